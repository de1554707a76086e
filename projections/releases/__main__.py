"""python -m projections.releases: the credit office's 红黑榜 drafts, reviews and approvals (command.py)."""

import sys

from projections.releases.command import main

sys.exit(main())
