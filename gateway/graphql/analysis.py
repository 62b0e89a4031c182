"""What an operation would cost to run, measured from its document before it is validated.

    measure = measure_operation(schema, document, operation_name=None, variables={})
    measure.depth, measure.aliases, measure.cost, measure.introspection_lists,
    measure.account_mutations

- depth: nesting of fields with selections; introspection (`__schema`, `__type`) is not
  counted, as with Strawberry's QueryDepthLimiter, so GraphiQL's introspection query passes.
- aliases: aliased fields, once per place a fragment is spread.
- cost: every field costs 1 each time it can be resolved; a field that takes a `first`
  argument (our connections) multiplies the cost of its selection by `first` (by the default
  page size when `first` is left out or null), counted at most as the largest page the
  resolver accepts: a larger `first` is the resolver's BAD_USER_INPUT to answer, whether it is
  written in the document or passed as a variable. `first` may come from a variable; the
  measure reads the value the operation would run with, which graphql-core's coercion gives,
  the variable's default included.
- introspection_lists: how deeply list fields of introspection types nest
  (`types { fields { type { fields … } } }` is the classic introspection bomb).
- account_mutations: root mutation fields that each cost db_service an Argon2 hash or
  verification (`login`, `register`, and `updateUser` whose input has a `password` or
  `currentPassword`, or comes from a variable, which may hold one), once per place they run.

Fragments are measured once and reused wherever they are spread, so a document of fragments
that each spread the next one twice (2^n expansions) is measured in linear time, and its
cost comes out as the 2^n it is. The document is not validated yet: unknown fields, unknown
fragments and fragment cycles measure as nothing (validation refuses them next).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionNode,
    SelectionSetNode,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    is_list_type,
    visit,
)
from graphql.execution import get_variable_values

_META_FIELDS = {
    "__schema": SchemaMetaFieldDef,
    "__type": TypeMetaFieldDef,
    "__typename": TypeNameMetaFieldDef,
}

# The GraphQL spec's GetOperation: with no operationName, a document must hold one operation.
# graphql-core's wording; the HTTP pipeline and the WebSocket path both refuse with it.
OPERATION_NAME_NEEDED = "Must provide operation name if query contains multiple operations."


@dataclass(frozen=True, slots=True)
class Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    introspection_lists: int = 0
    account_mutations: int = 0


_NOTHING = Measure()


def _together(parts: Iterable[Measure]) -> Measure:
    """The measure of selections side by side in one selection set."""
    depth = aliases = cost = lists = accounts = 0
    for part in parts:
        depth = max(depth, part.depth)
        aliases += part.aliases
        cost += part.cost
        lists = max(lists, part.introspection_lists)
        accounts += part.account_mutations
    return Measure(depth, aliases, cost, lists, accounts)


class _Measurer:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        default_first: int,
        max_first: int,
    ) -> None:
        self._schema = schema
        self._variables = variables
        self._default_first = default_first
        self._max_first = max_first
        self._fragments = fragments
        self._measured: dict[str, Measure] = {}
        self._measuring: set[str] = set()

    def operation(self, operation: OperationDefinitionNode) -> Measure:
        root = self._schema.get_root_type(operation.operation)
        return self._selection_set(operation.selection_set, root)

    def _selection_set(
        self, node: SelectionSetNode | None, parent: GraphQLNamedType | None
    ) -> Measure:
        if node is None:
            return _NOTHING
        return _together(self._selection(s, parent) for s in node.selections)

    def _selection(self, node: SelectionNode, parent: GraphQLNamedType | None) -> Measure:
        if isinstance(node, FieldNode):
            return self._field(node, parent)
        if isinstance(node, InlineFragmentNode):
            on = self._type(node.type_condition.name.value) if node.type_condition else parent
            return self._selection_set(node.selection_set, on)
        if isinstance(node, FragmentSpreadNode):
            return self._fragment(node.name.value)
        return _NOTHING

    def _fragment(self, name: str) -> Measure:
        if name in self._measured:
            return self._measured[name]
        definition = self._fragments.get(name)
        if definition is None or name in self._measuring:
            return _NOTHING  # unknown or cyclic: validation refuses the document
        self._measuring.add(name)
        measure = self._selection_set(
            definition.selection_set, self._type(definition.type_condition.name.value)
        )
        self._measuring.discard(name)
        self._measured[name] = measure
        return measure

    def _field(self, node: FieldNode, parent: GraphQLNamedType | None) -> Measure:
        name = node.name.value
        definition = self._definition(name, parent)
        child_type = get_named_type(definition.type) if definition else None
        child = self._selection_set(node.selection_set, child_type)
        is_list_of_introspection = bool(
            parent is not None
            and parent.name.startswith("__")
            and definition is not None
            and is_list_type(get_nullable_type(definition.type))
        )
        # Introspection subtrees do not count, as in Strawberry's QueryDepthLimiter.
        depth = 0 if name.startswith("__") or node.selection_set is None else 1 + child.depth
        return Measure(
            depth=depth,
            aliases=(1 if node.alias else 0) + child.aliases,
            cost=1 + self._first(node, definition) * child.cost,
            introspection_lists=child.introspection_lists + is_list_of_introspection,
            account_mutations=child.account_mutations
            + int(parent is self._schema.mutation_type and _hashes_a_password(node)),
        )

    def _definition(self, name: str, parent: GraphQLNamedType | None) -> GraphQLField | None:
        if name in _META_FIELDS:
            return _META_FIELDS[name]
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            field: GraphQLField | None = parent.fields.get(name)
            return field
        return None

    def _first(self, node: FieldNode, definition: GraphQLField | None) -> int:
        """How many times the field's selection can be resolved: its `first` (at most the
        largest page), or 1."""
        if definition is None or "first" not in definition.args:
            return 1
        value: Any = None
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                # A literal of thousands of digits is beyond int()'s limit (a ValueError, a 500):
                # anything past 18 digits is out of range anyway, so it counts as the largest.
                text = argument.value.value
                value = int(text) if len(text) <= 18 else self._max_first
            elif isinstance(argument.value, VariableNode):
                value = self._variables.get(argument.value.name.value)
        if not isinstance(value, int) or isinstance(value, bool):
            return self._default_first
        # Past the largest page the resolver refuses the field itself (BAD_USER_INPUT), so a
        # larger `first` costs no more than the largest page it could ever be served.
        return min(max(value, 1), self._max_first)

    def _type(self, name: str) -> GraphQLNamedType | None:
        return self._schema.get_type(name)


def measure_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    default_first: int,
    max_first: int,
) -> Measure:
    """The measure of the operation that would run; of the largest one if that is unclear.

    `variables` are the request's, as the client sent them; each operation is measured with
    the values it would run with (its defaults included).
    """
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    names = first_variables(document)
    measures = [
        _Measurer(
            schema,
            fragments,
            coerced_variables(schema, o, names, variables or {}),
            default_first,
            max_first,
        ).operation(o)
        for o in operations
    ]
    if not measures:
        return _NOTHING
    return Measure(
        depth=max(m.depth for m in measures),
        aliases=max(m.aliases for m in measures),
        cost=max(m.cost for m in measures),
        introspection_lists=max(m.introspection_lists for m in measures),
        account_mutations=max(m.account_mutations for m in measures),
    )


def coerced_variables(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    names: frozenset[str],
    inputs: Mapping[str, Any],
) -> Mapping[str, Any]:
    """The values `operation` would run with for its variables among `names`: the request's
    `inputs` coerced by graphql-core as execution coerces them, defaults included.

    Empty when they fail to coerce: execution then refuses the request before any resolver
    runs, so what it would have cost does not matter (every `first` measures as the default).
    """
    definitions = [
        d for d in operation.variable_definitions or () if d.variable.name.value in names
    ]
    if not definitions:
        return {}
    coerced = get_variable_values(schema, definitions, dict(inputs))
    if isinstance(coerced, list):
        return {}
    return coerced.coerced


# Mutations that always cost db_service an Argon2 hash or verification.
_ACCOUNT_MUTATIONS = frozenset({"login", "register"})
# UpdateUserInput fields that make updateUser cost one.
_PASSWORD_INPUTS = frozenset({"password", "currentPassword"})


def _hashes_a_password(node: FieldNode) -> bool:
    """Whether this root mutation field makes db_service hash or verify a password."""
    name = node.name.value
    if name in _ACCOUNT_MUTATIONS:
        return True
    if name != "updateUser":
        return False
    for argument in node.arguments or ():
        if argument.name.value != "input":
            continue
        if isinstance(argument.value, ObjectValueNode):
            return any(f.name.value in _PASSWORD_INPUTS for f in argument.value.fields)
        return True  # a variable: the measure does not depend on values, so it may hold one
    return False


class _FirstVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_argument(self, node: ArgumentNode, *_: object) -> None:
        if node.name.value == "first" and isinstance(node.value, VariableNode):
            self.names.add(node.value.name.value)


def first_variables(document: DocumentNode) -> frozenset[str]:
    """The variables given as a `first` argument anywhere in `document`: the only variables a
    measure depends on, so the only ones a cache of measures needs in its key."""
    visitor = _FirstVariables()
    visit(document, visitor)
    return frozenset(visitor.names)
