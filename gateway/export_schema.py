"""`python -m gateway.export_schema` prints the GraphQL SDL; `make schema` writes schema.graphql.

The committed schema.graphql is what clients and reviewers read, and a test fails when it
differs from `schema_sdl()`, so a change to the API shows up as a diff of that file.
"""

from __future__ import annotations

import sys

from gateway.graphql.schema import build_schema


def schema_sdl() -> str:
    """The live schema's SDL, exactly as schema.graphql should contain it."""
    return build_schema().as_str() + "\n"


def main() -> int:
    sys.stdout.write(schema_sdl())
    return 0


if __name__ == "__main__":
    sys.exit(main())
