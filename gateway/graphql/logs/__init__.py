"""The live log stream in GraphQL."""
