"""The catalog: seeded products, exact money, admin-only writes, validation."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from tests.factories import admin_token, error_codes, gql, make_product, make_user

SEEDED = {
    "SUSTech Hoodie": ("49.99", "Apparel", "Stay warm, stay proud!"),
    "SUSTech Water Bottle": ("19.99", "Drinkware", "Hydrate with pride!"),
    "SUSTech Notebook": ("9.99", "Stationery", "Write your future with SUSTech."),
}


async def test_the_three_sustech_products_are_seeded(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/products?limit=3")

    products = {p["name"]: p for p in response.json()}
    assert response.status_code == 200
    assert set(products) == set(SEEDED)
    for name, (price, category, slogan) in SEEDED.items():
        assert products[name]["category"] == category
        assert products[name]["slogan"] == slogan
        assert products[name]["description"]
        # Two-decimal JSON numbers, written as such (never through a float).
        assert f'"price":{price}' in response.text.replace(" ", "")


async def test_graphql_product_prices_are_exact_decimals(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ products(first: 3) { edges { node { name price } } } }")

    prices = {e["node"]["name"]: e["node"]["price"] for e in body["data"]["products"]["edges"]}
    assert prices == {name: value[0] for name, value in SEEDED.items()}


async def test_product_reads_are_public_and_missing_is_404(client: httpx.AsyncClient) -> None:
    found = await client.get("/api/v1/products/1")
    missing = await client.get("/api/v1/products/999999")
    graphql = await gql(
        client, "{ product(id: 1) { id name } nothing: product(id: 999999) { id } }"
    )

    assert found.status_code == 200
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    assert graphql["data"] == {"product": {"id": 1, "name": found.json()["name"]}, "nothing": None}
    assert error_codes(graphql) == ["NOT_FOUND"]
    assert graphql["errors"][0]["path"] == ["nothing"]


async def test_products_connection_pages(client: httpx.AsyncClient) -> None:
    query = "query($a: String) { products(first: 2, after: $a) { edges { node { id } cursor }"
    query += " pageInfo { hasNextPage endCursor } } }"

    first = await gql(client, query, {"a": None})
    page = first["data"]["products"]
    second = await gql(client, query, {"a": page["pageInfo"]["endCursor"]})

    first_ids = [e["node"]["id"] for e in page["edges"]]
    second_ids = [e["node"]["id"] for e in second["data"]["products"]["edges"]]
    assert page["pageInfo"]["hasNextPage"] is True
    assert second_ids
    assert not set(first_ids) & set(second_ids)
    assert min(second_ids) > max(first_ids)


async def test_admin_creates_and_updates_every_field(client: httpx.AsyncClient) -> None:
    token = await admin_token(client)
    product = await make_product(client, token, price="10.10", stock=5)

    updated = await gql(
        client,
        """mutation($id: Int!) { updateProduct(id: $id, input: {name: "Renamed",
            description: "New words", category: "Other", price: "0.30", slogan: "New!",
            stock: 7}) { name description category price slogan stock } }""",
        {"id": product["id"]},
        token=token,
    )

    assert product["price"] == 10.1
    assert updated["data"]["updateProduct"] == {
        "name": "Renamed",
        "description": "New words",
        "category": "Other",
        "price": "0.30",
        "slogan": "New!",
        "stock": 7,
    }


async def test_customers_cannot_write_the_catalog(client: httpx.AsyncClient) -> None:
    user = await make_user(client)

    created = await client.post(
        "/api/v1/products",
        json={"name": "X", "category": "Y", "price": 1, "stock": 1},
        headers=user.auth,
    )
    updated = await client.put("/api/v1/products/1", json={"stock": 0}, headers=user.auth)
    graphql = await gql(
        client, "mutation { updateProduct(id: 1, input: {stock: 0}) { stock } }", token=user.token
    )
    product = (await client.get("/api/v1/products/1")).json()

    assert created.status_code == updated.status_code == 403
    assert error_codes(graphql) == ["FORBIDDEN"]
    assert product["stock"] > 0


@pytest.mark.parametrize(
    ("price", "status"),
    [
        (-1, 400),
        ("-1", 400),
        (1.001, 400),
        ("1.001", 400),
        ("abc", 400),
        ("NaN", 400),
        (100000000, 400),
        (True, 400),
    ],
)
async def test_bad_prices_are_refused_and_change_nothing(
    client: httpx.AsyncClient, price: object, status: int
) -> None:
    token = await admin_token(client)
    product = await make_product(client, token, price="5.00")

    response = await client.put(
        f"/api/v1/products/{product['id']}",
        json={"price": price},
        headers={"Authorization": f"Bearer {token}"},
    )
    after = (await client.get(f"/api/v1/products/{product['id']}")).json()

    assert response.status_code == status
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"
    assert Decimal(str(after["price"])) == Decimal("5.00")


@pytest.mark.parametrize("price", ['"-1"', '"1.001"', '"abc"'])
async def test_graphql_bad_prices_are_refused(client: httpx.AsyncClient, price: str) -> None:
    token = await admin_token(client)

    body = await gql(
        client,
        f'mutation {{ createProduct(input: {{name: "Bad", category: "X", price: {price}}}) '
        "{ id } }",
        token=token,
    )

    assert body["data"] is None
    assert error_codes(body)[0] in {"BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"}


@pytest.mark.parametrize(
    ("price", "variables", "expected"),
    [
        ("1e2", None, "100.00"),  # a Float literal
        ('"1E+2"', None, "100.00"),  # a string the Decimal scalar reads in exponent form
        ("$p", {"p": "2.5e1"}, "25.00"),
        ("$p", {"p": 0.1}, "0.10"),
    ],
)
async def test_graphql_prices_in_any_form_of_the_decimal_scalar_are_sent_plain(
    client: httpx.AsyncClient, price: str, variables: dict[str, object] | None, expected: str
) -> None:
    # db_service takes plain decimal strings only; the gateway writes what the scalar read so
    token = await admin_token(client)
    declared = "($p: Decimal!)" if variables else ""

    body = await gql(
        client,
        f'mutation{declared} {{ createProduct(input: {{name: "Plain", category: "X", '
        f"price: {price}}}) {{ price }} }}",
        variables,
        token=token,
    )

    assert body.get("errors") is None, body
    assert body["data"]["createProduct"]["price"] == expected
