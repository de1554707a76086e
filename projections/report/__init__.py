"""Credit reports (信用报告): one entity's public credit information as a JSON file that verifies
offline and as a PDF, each record with its inclusion proof in the notary's signed tree.

  sections.py   one function per section, over the views (registration, double publicity, black and
                red lists, commitments, the credit evaluation, repairs, objections and repair
                applications step by step)
  document.py   the report as a document (pure): its records, body, canonical bytes, number, signature
  issue.py      issuing: one snapshot of the views, the records from the log, proofs, keeping the
                report as issued (schema `reports`)
  pdf.py        the PDF (reportlab, the font embedded, a QR code of the number and the tree head)
  http.py       the query API's routes

The verifier is ledger/audit/verify.py (--report); docs/architecture.md, "Credit reports".
"""
