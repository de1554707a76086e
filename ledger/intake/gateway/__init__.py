"""The submission gateway: departments submit credit events over HTTP/JSON (app.py)."""
