"""Compiled execution of known operations (placeholder: nothing compiles yet)."""

from __future__ import annotations

from typing import Any

from graphql import DocumentNode, OperationDefinitionNode

from gateway.graphql.context import Context
from gateway.graphql.schema import Schema


class Plan:
    async def run(self, context: Context, variables: dict[str, Any] | None) -> dict[str, Any]:
        raise NotImplementedError


class Compiler:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def compile(self, document: DocumentNode, operation: OperationDefinitionNode) -> Plan | None:
        return None
