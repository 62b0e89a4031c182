"""The document measure behind the GraphQL limits, and what its cache key depends on."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse

from gateway.graphql.analysis import first_variables, measure_operation
from gateway.graphql.limits import GraphQLLimits, exceeded
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
    schema = build_schema().graphql_schema
    document = parse(QUERY)

    def cost(variables: dict[str, int]) -> int:
        measure = measure_operation(
            schema,
            document,
            operation_name=None,
            variables=variables,
            default_first=20,
            max_first=100,
        )
        return measure.cost

    assert cost({"id": 1, "n": 5, "m": 5}) == cost({"id": 999, "n": 5, "m": 5})
    assert cost({"id": 1, "n": 50, "m": 5}) > cost({"id": 1, "n": 5, "m": 5})


def test_an_integral_float_first_measures_as_the_int_graphql_makes_of_it() -> None:
    schema = build_schema().graphql_schema
    document = parse("query($n: Int) { products(first: $n) { edges { node { id } } } }")

    def cost(n: object) -> int:
        measure = measure_operation(
            schema,
            document,
            operation_name=None,
            variables={"n": n},
            default_first=20,
            max_first=100,
        )
        return measure.cost

    assert cost(100.0) == cost(100) > cost(20)


def _cost(query: str, variables: dict[str, Any] | None = None) -> int:
    schema = build_schema()._schema
    measure = measure_operation(
        schema,
        parse(query),
        operation_name=None,
        variables=variables,
        default_first=20,
        max_first=100,
    )
    return measure.cost


def test_a_first_past_the_largest_page_measures_as_the_largest_page() -> None:
    # given a page of products asked for with a `first` over 100, written or as a variable
    page = "products(first: FIRST) { edges { node { id name } } }".replace
    variable = "query($n: Int) { " + page("FIRST", "$n") + " }"

    # when measured, then it costs what the largest page costs: the resolver refuses it itself
    largest = _cost("{ " + page("FIRST", "100") + " }")
    assert _cost("{ " + page("FIRST", "1000") + " }") == largest
    assert _cost(variable, {"n": 1_000_000}) == _cost(variable, {"n": 100}) == largest


DEFAULTED = (
    "query Q($n: Int = 100) { orders(first: $n) { edges { node { id user { orders(first: $n) "
    "{ edges { node { id product { id } } } } } } } } }"
)


def test_a_variable_left_out_measures_as_its_default() -> None:
    # given an operation whose `first` variable defaults to 100; when it is measured
    # then leaving it out costs what sending 100 costs, and sending null costs the default page
    assert _cost(DEFAULTED, {}) == _cost(DEFAULTED, {"n": 100}) > _cost(DEFAULTED, {"n": 20})
    assert _cost(DEFAULTED, {"n": None}) == _cost(DEFAULTED, {"n": 20})


def test_a_variable_left_out_is_refused_at_its_defaults_cost_after_a_cheap_run() -> None:
    # given the defaulted operation, measured first with a small `first` (and so cached)
    schema = build_schema()._schema
    document = parse(DEFAULTED)
    limits = GraphQLLimits()
    assert exceeded(limits, schema, document, None, {"n": 5}) is None
    assert exceeded(limits, schema, document, None, {"n": None}) is None

    # when the same document comes without the variable
    refusal = exceeded(limits, schema, document, None, {})

    # then its default is what is measured, and it is over the cost limit
    assert refusal is not None
    assert (refusal.extensions or {})["limit"] == "cost"


ACCOUNT_MUTATIONS = [
    ("one login", 'mutation { login(username: "a", password: "b") { token } }', 1),
    ("aliased logins", 'mutation { a: login(username: "a", password: "b") { token } '
     'b: login(username: "a", password: "c") { token } }', 2),
    ("login and register", 'mutation { login(username: "a", password: "b") { token } '
     'register(input: {sid: "1", username: "u", email: "e@x.io", password: "p"}) { id } }', 2),
    ("a fragment spread twice", "mutation { ...F ...F } fragment F on Mutation "
     '{ login(username: "a", password: "b") { token } }', 2),
    ("updateUser with a password", 'mutation { updateUser(sid: "1", input: {password: "p"}) '
     "{ id } }", 1),
    ("updateUser with a current password", 'mutation { updateUser(sid: "1", input: '
     '{email: "e@x.io", currentPassword: "p"}) { id } }', 1),
    ("updateUser from a variable", "mutation($i: UpdateUserInput!) { updateUser(sid: \"1\", "
     "input: $i) { id } }", 1),
    ("updateUser of a username only", 'mutation { updateUser(sid: "1", input: {username: "u"}) '
     "{ id } }", 0),
    ("a query", "{ welcome }", 0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "document", "count"), ACCOUNT_MUTATIONS, ids=[c[0] for c in ACCOUNT_MUTATIONS]
)
def test_account_mutations_are_counted_wherever_they_are_written(
    case: str, document: str, count: int
) -> None:
    # given a document; when it is measured
    measure = measure_operation(
        build_schema()._schema,
        parse(document),
        operation_name=None,
        variables={},
        default_first=20,
        max_first=100,
    )

    # then each field that costs db_service an Argon2 hash is counted, once per place it runs
    assert measure.account_mutations == count
