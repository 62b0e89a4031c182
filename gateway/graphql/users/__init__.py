"""Accounts in GraphQL."""
