"""Import a national double-publicity CSV file (双公示: XK_ licences or CF_ penalties) as a department.

    PYTHONPATH=. .venv/bin/python -m ledger.intake.importer --department xc-samr penalties.csv
        [--report report.csv] [--dry-run] [--timeout 120] [--no-progress]

1. Reads and checks the whole file first (``ledger.intake.csv_import``); nothing is sent if the file as a
   whole cannot be read (encoding, layout, a missing required column) or if the department may
   not emit the file's event type.
2. Signs and submits every valid row (flagged ones too) through ``LedgerClient`` with the
   department's key from LEDGER_KEYS_DIR, pipelined, and waits for every outcome. Rows refused
   locally are never submitted.
3. Writes the per-row report (CSV, UTF-8 with BOM so that Excel opens it): row, decision_no,
   event_id, status, field, reason, ledger_position; prints a summary and each refusal.

Statuses: ACCEPTED; FLAGGED (accepted, with identity warnings to review); DUPLICATE (already in the
ledger, nothing appended: a re-import); REJECTED (refused by the sequencer, with the column and the
reason); CONFLICT (the decision number was imported before with other content: nothing appended);
NO-OUTCOME (no answer within --timeout seconds of silence: import the file again later, rows
already in the ledger come back as DUPLICATE); REFUSED-BEFORE-SUBMISSION (refused by the file
check, never sent). --dry-run checks only: VALID / FLAGGED / REFUSED-BEFORE-SUBMISSION.

Exit status: 0 if no row was refused, 1 if any was (or had no outcome), 2 if nothing could be done
(file refused, department not authorized, no key, Kafka unreachable).

One module per concern, each importing only those above it:

    progress     the progress bar on stderr
    report       the statuses, the per-row report file and the printed summary
    submission   check the file, then submit every row through ledger.client and wait for the outcomes
    command      the command line (``__main__`` runs it)
"""

from ledger.intake.importer.command import main
from ledger.intake.importer.progress import Progress
from ledger.intake.importer.report import (
    ACCEPTED,
    CONFLICT,
    DUPLICATE,
    FAILED,
    FLAGGED,
    NO_OUTCOME,
    REFUSED,
    REJECTED,
    REPORT_COLUMNS,
    STATUS_ORDER,
    SUBMITTED,
    VALID,
    ImportResult,
    RowReport,
    summary,
    write_report,
)
from ledger.intake.importer.submission import Client, SetupError, check, import_file, submit

__all__ = [
    "ACCEPTED", "CONFLICT", "DUPLICATE", "FAILED", "FLAGGED", "NO_OUTCOME", "REFUSED", "REJECTED", "REPORT_COLUMNS",
    "STATUS_ORDER", "SUBMITTED", "VALID", "Client", "ImportResult", "Progress", "RowReport", "SetupError", "check",
    "import_file", "main", "submit", "summary", "write_report",
]
