"""The README's type-mapping table (report Q3) agrees with the migrations, the proto descriptors,
the GraphQL schema and openapi.yaml, in both directions, and each row follows one mapping rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import pytest
import yaml
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.export_schema import schema_sdl
from protos import db_service_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = sorted((ROOT / "db_service" / "migrations").glob("*.sql"))
# table → the proto message, GraphQL type and OpenAPI schema that carry its rows
ENTITIES = {"users": "User", "products": "Product", "orders": "Order"}
ABSENT = "—"


# --- the README table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table; None where the layer does not carry the field."""

    table: str
    field: str
    sql: str | None
    proto: str | None
    graphql: str | None
    openapi: str | None


def _cell(text: str) -> str | None:
    """The first `code` span of a cell, plus a trailing " null"; None for "—" cells."""
    text = text.strip()
    if text.startswith(ABSENT):
        return None
    match = re.match(r"`([^`]+)`( null\b)?", text)
    assert match, f"cell {text!r} should start with a `code` span or {ABSENT}"
    return match.group(1) + (" null" if match.group(2) else "")


def readme_rows() -> list[Row]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Type mapping\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 5, f"README row should have 5 cells: {line}"
        table, _, field = cells[0].strip("`").partition(".")
        rows.append(Row(table, field, *(_cell(c) for c in cells[1:])))
    assert rows, "no table under ## Type mapping in README.md"
    return rows


ROWS = readme_rows()


def _table_cells(layer: str, table: str) -> dict[str, str]:
    """layer's cells for one table's rows, keyed by the field name the layer uses."""
    cells = {}
    for row in ROWS:
        cell = getattr(row, layer)
        if row.table == table and cell is not None:
            cells[_layer_name(layer, row, cell)] = cell
    return cells


def _layer_name(layer: str, row: Row, cell: str) -> str:
    if layer == "sql":
        return row.field
    if layer == "proto":
        return cell.split()[-1]
    return cell.split(":")[0]


# --- the four sources --------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    type: str
    nullable: bool
    check_values: tuple[str, ...]


_COLUMN = re.compile(r"^\s*(\w+)\s+(\w+(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?)(.*)$")
_NOT_COLUMNS = {"primary", "unique", "constraint", "check", "foreign", "exclude"}


def _column(definition: str) -> tuple[str, Column] | None:
    match = _COLUMN.match(definition)
    if not match or match.group(1).lower() in _NOT_COLUMNS:
        return None
    name, sql_type, rest = match.groups()
    rest_upper = rest.upper()
    nullable = "NOT NULL" not in rest_upper and "PRIMARY KEY" not in rest_upper
    values = re.search(rf"CHECK\s*\(\s*{name}\s+IN\s*\(([^)]*)\)", rest, re.IGNORECASE)
    check = tuple(re.findall(r"'([^']*)'", values.group(1))) if values else ()
    return name, Column(re.sub(r"\s+", "", sql_type.lower()), nullable, check)


def migration_columns() -> dict[str, dict[str, Column]]:
    """Every column of every table the migrations create or add to, in order of the files."""
    tables: dict[str, dict[str, Column]] = {}
    for path in MIGRATIONS:
        sql = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        for name, body in re.findall(
            r"CREATE TABLE(?: IF NOT EXISTS)?\s+(\w+)\s*\((.*?)\n\);", sql, re.DOTALL | re.I
        ):
            for line in body.split(",\n"):
                found = _column(line.strip())
                if found:
                    tables.setdefault(name, {})[found[0]] = found[1]
        for name, definition in re.findall(
            r"ALTER TABLE\s+(\w+)\s+ADD COLUMN(?: IF NOT EXISTS)?\s+([^;]*);", sql, re.I
        ):
            found = _column(definition)
            if found:
                tables.setdefault(name, {})[found[0]] = found[1]
    return tables


_PROTO_SCALARS = {
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_DOUBLE: "double",
}


def proto_cell(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        type_name = field.message_type.name
    elif field.enum_type is not None:
        type_name = field.enum_type.name
    else:
        type_name = _PROTO_SCALARS[field.type]
    return f"{type_name} {field.name}"


def proto_fields(message: str) -> dict[str, str]:
    descriptor: Descriptor = getattr(pb, message).DESCRIPTOR
    return {f.name: proto_cell(f) for f in descriptor.fields}


GRAPHQL = graphql.build_schema(schema_sdl())


def graphql_fields(type_name: str) -> dict[str, str]:
    object_type = GRAPHQL.type_map[type_name]
    assert isinstance(object_type, graphql.GraphQLObjectType)
    return {name: f"{name}: {field.type}" for name, field in object_type.fields.items()}


OPENAPI: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = OPENAPI
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def openapi_type(schema: dict[str, Any]) -> str:
    """A property as `type (format)`, `string (enum: a, b)`, with ` or null` when nullable."""
    schema = _resolve(schema)
    variants = [_resolve(s) for s in schema.get("oneOf", [])] or [schema]
    nullable = any(v.get("type") == "null" for v in variants)
    (main,) = [v for v in variants if v.get("type") != "null"] or [schema]
    types = main["type"] if isinstance(main["type"], list) else [main["type"]]
    nullable = nullable or "null" in types
    (base,) = [t for t in types if t != "null"]
    detail = main.get("format")
    if "enum" in main:
        detail = "enum: " + ", ".join(main["enum"])
    text = f"{base} ({detail})" if detail else base
    return text + (" or null" if nullable else "")


def openapi_fields(schema_name: str) -> dict[str, str]:
    properties = OPENAPI["components"]["schemas"][schema_name]["properties"]
    return {name: f"{name}: {openapi_type(prop)}" for name, prop in properties.items()}


# --- the table against each source -------------------------------------------------------------


@pytest.mark.parametrize("table", ENTITIES)
def test_the_sql_column_matches_the_migrations(table: str) -> None:
    # given the columns the migrations create
    columns = migration_columns()[table]

    # when they are written as the table writes them
    actual = {name: c.type + (" null" if c.nullable else "") for name, c in columns.items()}

    # then the README has each column, with its type and nullability, and no other
    assert _table_cells("sql", table) == actual


@pytest.mark.parametrize(("table", "message"), ENTITIES.items())
def test_the_protobuf_column_matches_the_descriptors(table: str, message: str) -> None:
    assert _table_cells("proto", table) == proto_fields(message)


@pytest.mark.parametrize(("table", "type_name"), ENTITIES.items())
def test_the_graphql_column_matches_the_schema(table: str, type_name: str) -> None:
    assert _table_cells("graphql", table) == graphql_fields(type_name)


@pytest.mark.parametrize(("table", "schema_name"), ENTITIES.items())
def test_the_openapi_column_matches_openapi_yaml(table: str, schema_name: str) -> None:
    assert _table_cells("openapi", table) == openapi_fields(schema_name)


def test_every_table_of_the_mapping_is_listed() -> None:
    assert {row.table for row in ROWS} == set(ENTITIES)


# --- the rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    sql: str  # regex on the SQL type
    proto: str
    graphql: str
    openapi: str  # regex on the OpenAPI type, without " or null"


RULES = [
    Rule("integer", r"serial|integer", "int32", "Int", r"integer \(int32\)"),
    Rule("text", r"varchar\(\d+\)|text", "string", "String", r"string( \(email\))?"),
    Rule("money", r"numeric\(10,2\)", "string", "Decimal", r"number"),
    Rule("time", r"timestamptz", "Timestamp", "DateTime", r"string \(date-time\)"),
    Rule("boolean", r"boolean", "bool", "Boolean", r"boolean"),
    Rule("enum", r"varchar\(\d+\)", "<enum>", "<enum>", r"string \(enum: [a-z, ]+\)"),
]


def _is_relation(row: Row) -> bool:
    """A GraphQL field that resolves another object (Order.product) instead of a value."""
    assert row.graphql
    named = GRAPHQL.type_map[row.graphql.split(": ")[1].rstrip("!")]
    return isinstance(named, graphql.GraphQLObjectType)


COMPLETE_ROWS = [
    r for r in ROWS if r.sql and r.proto and r.graphql and r.openapi and not _is_relation(r)
]
SQL = migration_columns()


def _types(row: Row) -> tuple[str, str, str, str]:
    """The row's four types, without field names and null markers."""
    assert row.sql
    assert row.proto
    assert row.graphql
    assert row.openapi
    return (
        row.sql.removesuffix(" null"),
        row.proto.split()[0],
        row.graphql.split(": ", 1)[1].rstrip("!"),
        row.openapi.split(": ", 1)[1].removesuffix(" or null"),
    )


def _is_enum(row: Row) -> bool:
    return _types(row)[1] in pb.DESCRIPTOR.enum_types_by_name


def _rule_for(row: Row) -> Rule | None:
    sql_type, proto_type, graphql_type, openapi = _types(row)
    for rule in RULES:
        if rule.proto == "<enum>":
            # An enum keeps its name from protobuf to GraphQL.
            layers_ok = _is_enum(row) and graphql_type == proto_type
        else:
            layers_ok = (rule.proto, rule.graphql) == (proto_type, graphql_type)
        if layers_ok and re.fullmatch(rule.sql, sql_type) and re.fullmatch(rule.openapi, openapi):
            return rule
    return None


@pytest.mark.parametrize("row", COMPLETE_ROWS, ids=[f"{r.table}.{r.field}" for r in COMPLETE_ROWS])
def test_each_row_follows_one_mapping_rule(row: Row) -> None:
    assert _rule_for(row) is not None, f"{row.table}.{row.field} follows no mapping rule: {row}"


@pytest.mark.parametrize("row", COMPLETE_ROWS, ids=[f"{r.table}.{r.field}" for r in COMPLETE_ROWS])
def test_nullability_agrees_across_layers(row: Row) -> None:
    # given a column and the fields that carry it
    assert row.graphql
    assert row.openapi
    column = SQL[row.table][row.field]
    proto_field = getattr(pb, ENTITIES[row.table]).DESCRIPTOR.fields_by_name[row.field]

    # then null in SQL is a message field with presence, a nullable GraphQL field and JSON null
    assert row.graphql.endswith("!") != column.nullable
    assert row.openapi.endswith(" or null") == column.nullable
    if column.nullable:
        assert proto_field.has_presence


ENUM_ROWS = [r for r in COMPLETE_ROWS if _is_enum(r)]


@pytest.mark.parametrize("row", ENUM_ROWS, ids=[f"{r.table}.{r.field}" for r in ENUM_ROWS])
def test_enum_values_agree_across_layers(row: Row) -> None:
    # given an enum column, its proto enum, its GraphQL enum and its OpenAPI enum
    assert row.proto
    assert row.graphql
    sql_values = set(SQL[row.table][row.field].check_values)
    proto_enum = pb.DESCRIPTOR.enum_types_by_name[row.proto.split()[0]]
    prefix = re.sub(r"(?<!^)([A-Z])", r"_\1", proto_enum.name).upper() + "_"
    proto_values = {v.name.removeprefix(prefix).lower() for v in proto_enum.values if v.number != 0}
    graphql_enum = GRAPHQL.type_map[row.graphql.split(": ")[1].rstrip("!")]
    assert isinstance(graphql_enum, graphql.GraphQLEnumType)
    graphql_values = {name.lower() for name in graphql_enum.values}
    schema = OPENAPI["components"]["schemas"][ENTITIES[row.table]]["properties"][row.field]
    openapi_values = set(_resolve(schema)["enum"])

    # then all four name the same values
    assert sql_values, f"{row.table}.{row.field} has no CHECK (… IN (…)) in the migrations"
    assert sql_values == proto_values == graphql_values == openapi_values
