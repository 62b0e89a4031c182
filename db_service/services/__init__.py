"""Use cases: the business rules, between the servicers (transport) and repositories (SQL)."""
