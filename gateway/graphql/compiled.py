"""Compiled execution of known operations: a plan per operation, made once, run many times.

    plan = Compiler(schema).compile(document, operation)   # None: not supported
    body = await plan.run(context, variables)              # {"data": …, "errors": […]}

As graphql-jit and Grafast do: the selection sets are collected and every field is resolved to
the one thing it does once, at compile time, so running the plan is a walk over data:

- a plain field of a message-backed type (gateway.graphql.messages) is its `read` applied to
  the backend's protobuf message, serialized by the field's own scalar or enum; a page's rows
  stay protobuf messages, with no resolver call and no Python object per row;
- a connection's `edges`, `node`, `cursor` and `pageInfo` are read from the page it holds;
- a field with a resolver (root fields, `Order.product`, `Order.user`, `User.orders`) calls
  the very resolver graphql-core would call (Strawberry's wrapper, so its permissions run),
  with arguments coerced by graphql-core's `get_argument_values`, recorded as the reference
  executor records it (gateway.graphql.recording); a row becomes an object only here;
- errors get graphql-core's paths and messages, and nulls propagate to the nearest nullable
  field exactly as in graphql-core; variables are coerced by graphql-core's
  `get_variable_values`.

Not compiled (the pipeline runs these with the reference executor): directives anywhere,
introspection (`__schema`, `__type`), fragments on another type than the one they are spread
in, subscriptions, and any type or field the compiler does not know how to read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from inspect import isawaitable
from typing import Any, TypeGuard, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    GraphQLScalarType,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    TypeNameMetaFieldDef,
    located_error,
)
from graphql.execution import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path, inspect

from gateway.graphql.context import Context
from gateway.graphql.errors import coded_errors
from gateway.graphql.messages import message_readers
from gateway.graphql.pagination import Connection
from gateway.graphql.recording import record_resolver_call, recorded_resolvers
from gateway.graphql.schema import Schema

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class Unsupported(Exception):
    """The operation uses something the compiler leaves to the reference executor."""


class _Null(Exception):
    """A non-null field came out null: its parent is null too (graphql-core's propagation).

    The error travels with it and is recorded where a nullable field (or the response's
    `data`) absorbs it; as in graphql-core, when siblings running concurrently both null their
    parent, only the first to do so is reported.
    """

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


class Run:
    """One execution of a plan: the request's context, variables and errors."""

    __slots__ = ("context", "errors", "fragments", "operation", "schema", "variables")

    def __init__(
        self,
        plan: Plan,
        context: Context,
        variables: VariableValues,
    ) -> None:
        self.context = context
        self.variables = variables
        self.errors: list[GraphQLError] = []
        self.schema = plan.schema
        self.operation = plan.operation
        self.fragments = plan.fragments

    def fail(self, exc: Exception, field: FieldPlan, path: Path) -> None:
        """Record the field's error, or, for a non-null field, pass it up with its null."""
        error = located_error(exc, field.nodes, path.as_list())
        if field.non_null:
            raise _Null(error) from None
        self.errors.append(error)

    def absorb(self, null: _Null, non_null: bool) -> None:
        """A null from below: passed on by a non-null field, recorded by a nullable one."""
        if non_null:
            raise null
        self.errors.append(null.error)

    def info(self, field: FieldPlan, path: Path) -> GraphQLResolveInfo[Context]:
        return GraphQLResolveInfo(
            field.name,
            field.nodes,
            field.return_type,
            field.parent,
            path,
            self.schema.graphql_schema,
            self.fragments,
            None,
            self.operation,
            # As Strawberry's execution context gives them to its resolvers: a plain dict.
            cast(VariableValues, self.variables.coerced),
            self.context,
            _is_awaitable,
            None,
            _HELPERS,
        )


def _is_awaitable(value: Any) -> TypeGuard[Awaitable[Any]]:
    return isawaitable(value)


async def _gather(values: Sequence[Awaitable[Any]]) -> list[Any]:
    return list(await asyncio.gather(*values))


def _track(values: Sequence[Awaitable[Any]]) -> None:
    # No resolver of this schema leaves work running after it returns.
    raise NotImplementedError("resolvers must await their work")


_HELPERS = GraphQLResolveInfoHelpers(_gather, _track)


# How a field gets its raw value from its parent's source.
Getter = Callable[[Any], Any]


class FieldPlan:
    """One response key of a selection set, resolved at compile time."""

    __slots__ = (
        "complete",
        "definition",
        "get",
        "is_async",
        "key",
        "leaf",
        "name",
        "nodes",
        "non_null",
        "parent",
        "recorded",
        "resolver",
        "return_type",
        "wrap",
    )

    def __init__(
        self,
        key: str,
        nodes: list[FieldNode],
        parent: GraphQLObjectType,
        definition: GraphQLField,
    ) -> None:
        self.key = key
        self.nodes = nodes
        self.name = nodes[0].name.value
        self.parent = parent
        self.definition = definition
        self.return_type: GraphQLOutputType = definition.type
        self.non_null = isinstance(definition.type, GraphQLNonNull)
        self.get: Getter | None = None  # a plain read; None: a resolver call
        self.resolver: Callable[..., Any] | None = None
        self.recorded = False
        self.wrap: Callable[[Any], Any] | None = None  # message → the object a resolver needs
        self.complete: Completion = _identity
        # A scalar or enum field's serializer: its value needs no path unless it fails.
        self.leaf: Callable[[Any], Any] | None = None
        self.is_async = False

    def value_sync(self, source: Any, path: Path, run: Run) -> Any:
        """The completed value of this plain field (no resolver below it)."""
        try:
            assert self.get is not None
            if self.leaf is not None:
                value = self.leaf(self.get(source))
            else:
                value = self.complete(self.get(source), Path(path, self.key, self.parent.name), run)
        except _Null as null:
            return run.absorb(null, self.non_null)
        except Exception as exc:
            run.fail(exc, self, Path(path, self.key, self.parent.name))
            return None
        if value is None and self.non_null:
            self._null(Path(path, self.key, self.parent.name), run)
        return value

    async def value_async(self, source: Any, path: Path, run: Run) -> Any:
        failed, raw, here = self.begin(source, path, run)
        return None if failed else await self.finish(raw, here, run)

    def begin(self, source: Any, path: Path, run: Run) -> tuple[bool, Any, Path]:
        """Call the resolver now, as graphql-core calls the resolvers of a selection set in
        order before it waits on any: (failed, raw value or awaitable, path).
        A non-null field failing here raises _Null, so its siblings are not even called."""
        here = Path(path, self.key, self.parent.name)
        try:
            raw = self.call(source, here, run) if self.get is None else self.get(source)
        except Exception as exc:
            run.fail(exc, self, here)
            return True, None, here
        return False, raw, here

    async def finish(self, raw: Any, here: Path, run: Run) -> Any:
        try:
            if isawaitable(raw):
                raw = await raw
            value = self.complete(raw, here, run)
            if isawaitable(value):
                value = await value
        except _Null as null:
            return run.absorb(null, self.non_null)
        except Exception as exc:
            run.fail(exc, self, here)
            return None
        if value is None and self.non_null:
            self._null(here, run)
        return value

    def call(self, source: Any, path: Path, run: Run) -> Any:
        """Call the field's resolver as graphql-core would (recorded where it records)."""
        assert self.resolver is not None
        node = self.nodes[0]
        args = (
            get_argument_values(self.definition, node, run.variables)
            if self.definition.args
            else {}
        )
        root = self.wrap(source) if self.wrap is not None and source is not None else source
        info = run.info(self, path)
        if self.recorded:
            return record_resolver_call(self.resolver, root, info, **args)
        return self.resolver(root, info, **args)

    def _null(self, path: Path, run: Run) -> None:
        message = f"Cannot return null for non-nullable field {self.parent.name}.{self.name}."
        run.fail(TypeError(message), self, path)


Completion = Callable[[Any, Path, Run], Any]


def _identity(value: Any, path: Path, run: Run) -> Any:
    return value


class ObjectPlan:
    """A selection set on one object type."""

    __slots__ = ("fields", "is_async", "type")

    def __init__(self, type_: GraphQLObjectType, fields: list[FieldPlan]) -> None:
        self.type = type_
        self.fields = fields
        self.is_async = any(f.is_async for f in fields)

    def complete_sync(self, source: Any, path: Path, run: Run) -> dict[str, Any]:
        return {f.key: f.value_sync(source, path, run) for f in self.fields}

    async def complete_async(
        self, source: Any, path: Path, run: Run, *, serially: bool = False
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        pending: list[tuple[FieldPlan, Any, Path]] = []
        try:
            for field in self.fields:
                if not field.is_async:
                    result[field.key] = field.value_sync(source, path, run)
                elif serially:
                    result[field.key] = await field.value_async(source, path, run)
                else:
                    result[field.key] = None  # keeps the response's field order
                    failed, raw, here = field.begin(source, path, run)
                    if not failed:
                        pending.append((field, raw, here))
        except _Null:
            for _, raw, _ in pending:
                if isinstance(raw, Coroutine):
                    raw.close()  # called, never to be awaited: graphql-core drops them too
            raise
        if pending:
            values = await _all_or_none(f.finish(raw, here, run) for f, raw, here in pending)
            for (field, _, _), value in zip(pending, values, strict=True):
                result[field.key] = value
        return result


class Plan:
    """An operation compiled against the schema; `run` answers one request with it."""

    def __init__(
        self,
        schema: Schema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        root: ObjectPlan,
        field_suggestions: bool,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments
        self.root = root
        self.field_suggestions = field_suggestions

    async def run(self, context: Context, variables: dict[str, Any] | None) -> dict[str, Any]:
        coerced = get_variable_values(
            self.schema.graphql_schema, self.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            errors = coded_errors(coerced, field_suggestions=self.field_suggestions)
            return {"data": None, "errors": errors}
        run = Run(self, context, coerced)
        serially = self.operation.operation is OperationType.MUTATION
        data: dict[str, Any] | None
        try:
            if self.root.is_async:
                data = await self.root.complete_async(None, None, run, serially=serially)  # type: ignore[arg-type]
            else:
                data = self.root.complete_sync(None, None, run)  # type: ignore[arg-type]
        except _Null as null:
            data = None
            run.errors.append(null.error)
        body: dict[str, Any] = {"data": data}
        if run.errors:
            body["errors"] = coded_errors(run.errors, field_suggestions=self.field_suggestions)
        return body


class Compiler:
    """Compiles operations against one schema (see the module docstring for what compiles)."""

    def __init__(self, schema: Schema, *, field_suggestions: bool = True) -> None:
        self.strawberry = schema
        self.schema = schema.graphql_schema
        self.recorded = recorded_resolvers(self.schema)
        self.field_suggestions = field_suggestions

    def compile(self, document: DocumentNode, operation: OperationDefinitionNode) -> Plan | None:
        if operation.operation is OperationType.SUBSCRIPTION or operation.directives:
            return None
        if any(v.directives for v in operation.variable_definitions or ()):
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        root_type = self.schema.get_root_type(operation.operation)
        assert root_type is not None
        try:
            root = self._object(root_type, [operation.selection_set], fragments, source=None)
        except Unsupported:
            return None
        return Plan(self.strawberry, operation, fragments, root, self.field_suggestions)

    def _object(
        self,
        type_: GraphQLObjectType,
        selection_sets: list[SelectionSetNode],
        fragments: Mapping[str, FragmentDefinitionNode],
        *,
        source: str | None,
        connection: type[Connection[Any]] | None = None,
    ) -> ObjectPlan:
        """The plan of `selection_sets` on `type_`, whose source at run time is described by
        `source`: "message" (a protobuf message), "edge" (a row of `connection`), or None
        (whatever object the resolver returned)."""
        grouped: dict[str, list[FieldNode]] = {}
        # One set for all of them, as CollectSubfields has: a fragment spread under two nodes
        # of one merged field is collected once (its nodes, so its error locations, once).
        visited: set[str] = set()
        for selection_set in selection_sets:
            self._collect(type_, selection_set, fragments, grouped, visited)
        fields = [
            self._field(type_, key, nodes, fragments, source, connection)
            for key, nodes in grouped.items()
        ]
        return ObjectPlan(type_, fields)

    def _collect(
        self,
        type_: GraphQLObjectType,
        selection_set: SelectionSetNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        """graphql-core's field collection, for object types and no directives."""
        for selection in selection_set.selections:
            if selection.directives:
                raise Unsupported("directive")
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is not None and condition.name.value != type_.name:
                    raise Unsupported("fragment on another type")
                self._collect(type_, selection.selection_set, fragments, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = fragments[name]
                if fragment.directives or fragment.type_condition.name.value != type_.name:
                    raise Unsupported("fragment on another type")
                self._collect(type_, fragment.selection_set, fragments, grouped, visited)

    def _field(
        self,
        parent: GraphQLObjectType,
        key: str,
        nodes: list[FieldNode],
        fragments: Mapping[str, FragmentDefinitionNode],
        source: str | None,
        connection: type[Connection[Any]] | None,
    ) -> FieldPlan:
        name = nodes[0].name.value
        is_root = source is None and parent in self._roots()
        if name == "__typename":
            field = FieldPlan(key, nodes, parent, TypeNameMetaFieldDef)
            if is_root:
                self._resolved(field, TypeNameMetaFieldDef.resolve)
            else:
                type_name = parent.name
                field.get = lambda _: type_name
            return field
        if name.startswith("__"):
            raise Unsupported("introspection")
        definition = parent.fields[name]
        field = FieldPlan(key, nodes, parent, definition)
        origin = self._origin(parent.name)
        readers = message_readers(origin) if origin is not None else {}
        strawberry_field = self.strawberry.get_field_for_type(name, parent.name)
        if strawberry_field is None:
            raise Unsupported(f"{parent.name}.{name}")
        python_name = strawberry_field.python_name
        produces = "object"  # what the raw value is: "object", "message", "page" or "edges"
        if source == "edge":
            assert connection is not None
            if name == "node":
                field.get = _identity_get
                produces = "message"
            elif name == "cursor":
                field.get = connection.cursor_of
            else:
                raise Unsupported(f"{parent.name}.{name}")
        elif origin is not None and issubclass(origin, Connection) and not is_root:
            if name == "edges":
                field.get = _items
                produces = "edges"
            elif name == "pageInfo":
                field.get = _page_info
            else:
                raise Unsupported(f"{parent.name}.{name}")
        elif source == "message" and python_name in readers:
            field.get = readers[python_name]
        elif strawberry_field.base_resolver is not None or is_root:
            resolver = definition.resolve
            if resolver is None:
                raise Unsupported(f"{parent.name}.{name} has no resolver")
            self._resolved(field, resolver)
            if source == "message":
                # The resolver is a method of the message's type: it needs that object.
                field.wrap = getattr(origin, "from_pb")  # noqa: B009
        else:
            field.get = _attribute(python_name)
        field.complete = self._completion(
            definition.type, nodes, fragments, produces, origin=origin
        )
        nullable = definition.type
        if isinstance(nullable, GraphQLNonNull):
            nullable = nullable.of_type
        if isinstance(nullable, GraphQLScalarType | GraphQLEnumType):
            field.leaf = _serializer(nullable)
        child_async = getattr(field.complete, "is_async", False)
        field.is_async = field.is_async or child_async
        return field

    def _resolved(self, field: FieldPlan, resolver: Callable[..., Any] | None) -> None:
        assert resolver is not None
        field.resolver = resolver
        field.recorded = resolver in self.recorded
        field.is_async = True

    def _completion(
        self,
        type_: GraphQLOutputType,
        nodes: list[FieldNode],
        fragments: Mapping[str, FragmentDefinitionNode],
        produces: str,
        *,
        origin: type | None,
    ) -> Completion:
        """How a raw value of `type_` becomes its JSON value (None checked by the caller)."""
        nullable = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if isinstance(nullable, GraphQLList):
            item_type = nullable.of_type
            item_non_null = isinstance(item_type, GraphQLNonNull)
            connection = origin if produces == "edges" else None
            item = self._completion(
                item_type,
                nodes,
                fragments,
                "edge" if produces == "edges" else produces,
                origin=connection,
            )
            return _list(item, item_non_null, nodes)
        if isinstance(nullable, GraphQLScalarType | GraphQLEnumType):
            return _leaf(nullable)
        assert isinstance(nullable, GraphQLObjectType)
        selection_sets = [n.selection_set for n in nodes if n.selection_set is not None]
        target = self._origin(nullable.name)
        if produces == "edge":
            assert origin is not None
            assert issubclass(origin, Connection)
            plan = self._object(
                nullable, selection_sets, fragments, source="edge", connection=origin
            )
            return _object(plan, unwrap=False)
        is_message = target is not None and bool(message_readers(target))
        if is_message:
            plan = self._object(nullable, selection_sets, fragments, source="message")
            return _object(plan, unwrap=produces != "message")
        plan = self._object(nullable, selection_sets, fragments, source="object")
        return _object(plan, unwrap=False)

    def _origin(self, type_name: str) -> type | None:
        definition = self.strawberry.get_type_by_name(type_name)
        origin = getattr(definition, "origin", None)
        return origin if isinstance(origin, type) else None

    def _roots(self) -> tuple[GraphQLObjectType, ...]:
        return tuple(t for t in (self.schema.query_type, self.schema.mutation_type) if t)


def _identity_get(source: Any) -> Any:
    return source


def _items(connection: Any) -> Any:
    return connection.items


def _page_info(connection: Any) -> Any:
    return connection.build_page_info()


def _attribute(name: str) -> Getter:
    def get(source: Any) -> Any:
        return getattr(source, name)

    return get


def _serializer(type_: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any]:
    """graphql-core's completion of a leaf value, as a function of the value alone."""
    serialize = type_.serialize

    def complete(value: Any) -> Any:
        if value is None:
            return None
        serialized = serialize(value)
        if serialized is None:
            message = (
                f"Expected `{inspect(type_)}.serialize({inspect(value)})`"
                f" to return non-nullable value, returned: {inspect(serialized)}"
            )
            raise TypeError(message)
        return serialized

    # The backend's strings, 32-bit ints and booleans are what these scalars serialize to.
    if type_ is GraphQLString:
        return lambda value: value if type(value) is str else complete(value)
    if type_ is GraphQLBoolean:
        return lambda value: value if type(value) is bool else complete(value)
    if type_ is GraphQLInt:
        return lambda value: (
            value if type(value) is int and _INT_MIN <= value <= _INT_MAX else complete(value)
        )
    return complete


def _leaf(type_: GraphQLScalarType | GraphQLEnumType) -> Completion:
    serialize = _serializer(type_)
    return lambda value, path, run: serialize(value)


def _object(plan: ObjectPlan, *, unwrap: bool) -> Completion:
    if plan.is_async:

        async def complete_async(value: Any, path: Path, run: Run) -> Any:
            if value is None:
                return None
            return await plan.complete_async(value.message if unwrap else value, path, run)

        complete_async.is_async = True  # type: ignore[attr-defined]
        return complete_async

    def complete(value: Any, path: Path, run: Run) -> Any:
        if value is None:
            return None
        return plan.complete_sync(value.message if unwrap else value, path, run)

    return complete


def _list(item: Completion, item_non_null: bool, nodes: list[FieldNode]) -> Completion:
    def null_item(path: Path, run: Run) -> None:
        # graphql-core's error for a null where the list wants a non-null item.
        parent = path.prev
        assert parent is not None
        message = f"Cannot return null for non-nullable field {parent.typename}.{parent.key}."
        raise _Null(located_error(TypeError(message), nodes, path.as_list()))

    def one(value: Any, index: int, path: Path, run: Run) -> Any:
        here = Path(path, index, None)
        try:
            completed = item(value, here, run)
        except _Null as null:
            return run.absorb(null, item_non_null)
        if completed is None and item_non_null:
            null_item(here, run)
        return completed

    if not getattr(item, "is_async", False):

        def complete(values: Any, path: Path, run: Run) -> Any:
            if values is None:
                return None
            return [one(v, i, path, run) for i, v in enumerate(values)]

        return complete

    async def one_async(value: Any, index: int, path: Path, run: Run) -> Any:
        here = Path(path, index, None)
        try:
            completed = await item(value, here, run)
        except _Null as null:
            return run.absorb(null, item_non_null)
        if completed is None and item_non_null:
            null_item(here, run)
        return completed

    async def complete_async(values: Any, path: Path, run: Run) -> Any:
        if values is None:
            return None
        # All rows start before any waits, so their DataLoader reads go out as one batch.
        return await _all_or_none(one_async(v, i, path, run) for i, v in enumerate(values))

    complete_async.is_async = True  # type: ignore[attr-defined]
    return complete_async


async def _all_or_none(values: Iterable[Coroutine[Any, Any, Any]]) -> list[Any]:
    """The values, run concurrently; the first that nulls its parent cancels the rest before
    they finish (and record), as graphql-core cancels the siblings of a failed field."""
    tasks = [asyncio.ensure_future(value) for value in values]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
