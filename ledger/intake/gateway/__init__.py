"""The submission gateway: departments submit credit events over HTTP/JSON (started as
`python -m ops.run gateway`, wired in ops/root.py; the routes and what is judged: app.py). One module per concern:

  app.py        the routes, their handlers and make_app (the app over its collaborators)
  checks.py     what is judged about one JSON event before anything is submitted, pure
  kafka.py      the Kafka adapter `Ledger`: one producer of submissions, one watcher of outcomes
  tokens.py     who may submit: the departments' bearer tokens, known by digest
  docs_page.py  GET /docs, the OpenAPI description as an HTML page
  errors.py     what the gateway raises instead of answering, and the answers
"""
