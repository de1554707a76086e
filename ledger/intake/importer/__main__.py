"""``python -m ledger.intake.importer``: the command line (ledger/intake/importer/command.py)."""

from ledger.intake.importer.command import main

main()
