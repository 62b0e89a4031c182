"""Orders in GraphQL."""
