"""Pure domain of the credit ledger: identities, the entity model (decide/evolve), working days,
rules as data.

Imports only the standard library and python-stdnum; never Kafka, Avro, PostgreSQL or HTTP.
"""
