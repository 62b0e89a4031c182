"""The GraphQL API: one folder per domain (types, queries, mutations), wired in schema.py."""
