"""The document measure behind the GraphQL limits, and what its cache key depends on."""

from __future__ import annotations

from graphql import parse

from gateway.graphql.analysis import first_variables, measure_operation
from gateway.graphql.schema import build_schema

QUERY = """
query Page($id: Int!, $n: Int, $m: Int) {
  product(id: $id) { name }
  products(first: $n) { edges { node { id } } }
  ...More
}
fragment More on Query { orders(first: $m) { edges { node { id } } } }
"""


def test_only_variables_given_as_first_are_in_the_measure_key() -> None:
    assert first_variables(parse(QUERY)) == frozenset({"n", "m"})
    assert first_variables(parse("query($id: Int!) { product(id: $id) { name } }")) == frozenset()


def test_the_measure_follows_first_variables_and_ignores_the_others() -> None:
    schema = build_schema()._schema
    document = parse(QUERY)

    def cost(variables: dict[str, int]) -> int:
        measure = measure_operation(
            schema, document, operation_name=None, variables=variables, default_first=20
        )
        return measure.cost

    assert cost({"id": 1, "n": 5, "m": 5}) == cost({"id": 999, "n": 5, "m": 5})
    assert cost({"id": 1, "n": 50, "m": 5}) > cost({"id": 1, "n": 5, "m": 5})


def test_an_integral_float_first_measures_as_the_int_graphql_makes_of_it() -> None:
    schema = build_schema()._schema
    document = parse("query($n: Int) { products(first: $n) { edges { node { id } } } }")

    def cost(n: object) -> int:
        measure = measure_operation(
            schema, document, operation_name=None, variables={"n": n}, default_first=20
        )
        return measure.cost

    assert cost(100.0) == cost(100) > cost(20)
