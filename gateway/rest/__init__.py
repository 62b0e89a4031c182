"""REST compatibility routes under /api/v1 (DESIGN.md §7): thin wrappers over gateway.operations."""
