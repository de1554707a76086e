"""The credit office's 红黑榜 releases: drafting from the views, review, approval on the ledger, and the
published files (docs/domain-notes.md §11.2, docs/architecture.md "红黑榜 releases").

    content.py   the release's content from the views' rows, its approval record, its CSV rows
    drafts.py    the office's working store of drafts (PostgreSQL schema ``office``): draw, review, approve
    pdf.py       the PDF of an approved release (reportlab, the Chinese font embedded)
    command.py   ``python -m projections.releases draft|review|approve|list|show``

What is published is the content the approval carries (the views' ``releases`` and
``release_entries``, projected from the ledger); nothing here draws the lists again for a release
that is approved.
"""
