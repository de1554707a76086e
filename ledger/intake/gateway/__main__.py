"""The command line: python -m ledger.intake.gateway (ops/stack starts it by this module name)."""

from ledger.intake.gateway.app import main

main()
