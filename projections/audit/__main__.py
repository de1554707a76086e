"""`python -m projections.audit ...`: the auditor's command (projections/audit/auditor.py)."""

import sys

from projections.audit.auditor import main

sys.exit(main())
