"""The catalog in GraphQL."""
