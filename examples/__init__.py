"""Small, documented examples of how outside systems use the ledger's feeds."""
