"""``python -m ledger.intake.csv_import``: print the accepted columns as a Markdown table (the one in
docs/csv-import.md)."""

from ledger.intake.csv_import.columns import column_table

print(column_table())
