"""Reading national double-publicity (双公示) CSV files into credit events. Pure: no Kafka, no files.

    reading = open_csv(data, "xc-samr")        # FileRefused if the file as a whole cannot be read
    for row in reading.rows():                 # one RowResult per data row, never an exception
        row.record or row.refusals

The layout is the national one (docs/domain-notes.md §3.2 licences, XK_ codes; §3.3 penalties, CF_ codes).
Columns are named by their codes (``CF_XDR_MC``) or by their Chinese headers (``行政相对人名称``),
in any order; full-width characters, spaces and a leading ``*`` (required-field mark) are tolerated,
and so is a trailing bracket (``罚款金额（万元）``). The column table is derived from the field docs
of ``schemas/avro/AdministrativeLicenceGranted.v1.avsc`` and ``AdministrativePenaltyImposed.v1.avsc``
(each doc starts with the code and the Chinese name); only the subject's columns (name, credit code,
ID document), which the envelope carries, and the national columns the ledger does not keep are
listed in ``columns.py``. ``python -m ledger.intake.csv_import`` prints the table.

One module per concern, each importing only those above it:

    problems   RowResult, Problem and the two exceptions
    columns    the national layouts: the columns of each family, read from the Avro docs; the table
    layout     one file's header: its family and where each column is
    values     one cell: dates, amounts in 万元 to fen, text, category lists
    rows       one data row to a record or its refusals; the deterministic event id
    reading    bytes to rows: encoding, delimiter, header row, every data row

Errors: ``FileRefused`` (the whole file: encoding, layout, a missing required column, a CSV syntax
error) is the only exception ``open_csv`` and ``Reading.rows`` raise; ``CellError`` (a ValueError) is
what the single-value parsers ``parse_date`` and ``parse_wanyuan`` raise.
"""

from ledger.intake.csv_import.columns import KIND_NAMES, LICENCE, PENALTY, Column, column_table, columns
from ledger.intake.csv_import.layout import Layout
from ledger.intake.csv_import.problems import CellError, FileRefused, Problem, RowResult
from ledger.intake.csv_import.reading import Reading, decode, open_csv, read_csv
from ledger.intake.csv_import.rows import EVENT_ID_NAMESPACE, event_id_for, map_row
from ledger.intake.csv_import.values import parse_date, parse_wanyuan

__all__ = [
    "EVENT_ID_NAMESPACE",
    "KIND_NAMES",
    "LICENCE",
    "PENALTY",
    "CellError",
    "Column",
    "FileRefused",
    "Layout",
    "Problem",
    "Reading",
    "RowResult",
    "column_table",
    "columns",
    "decode",
    "event_id_for",
    "map_row",
    "open_csv",
    "parse_date",
    "parse_wanyuan",
    "read_csv",
]
