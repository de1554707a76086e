from ledger.intake.csv_import.rows import column_table

print(column_table())
