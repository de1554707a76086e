"""Importing a double-publicity CSV file as a department (moving into modules of this package)."""

from ledger.intake.importer.submission import *  # noqa: F403
from ledger.intake.importer.submission import _cli, _decided, _local  # noqa: F401
