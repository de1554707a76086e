"""Pure domain of the credit ledger: identities, working days, rules as data.

Imports only the standard library, python-stdnum and holidays; never Kafka, Avro,
PostgreSQL or HTTP.
"""
