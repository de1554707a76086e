"""Reading national double-publicity CSV files into credit events (moving into modules of this package)."""

from ledger.intake.csv_import.rows import *  # noqa: F403
from ledger.intake.csv_import.rows import KIND_NAMES, __all__  # noqa: F401
