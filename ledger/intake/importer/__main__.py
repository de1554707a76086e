from ledger.intake.importer.submission import main

main()
