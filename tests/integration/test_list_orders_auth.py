"""ListOrders authenticates its caller inside the page's own statement: revocation stays
immediate, and the caller's role decides whose orders (and users) the page holds."""

from __future__ import annotations

import grpc
import httpx
import pytest

from protos import db_service_pb2 as pb
from protos import db_service_pb2_grpc
from tests.conftest import Stack
from tests.factories import Account, admin_token, make_product, make_user

INCLUDE_ALL = [pb.ORDER_INCLUDE_PRODUCT, pb.ORDER_INCLUDE_USER]


async def _list(stack: Stack, token: str, **fields: object) -> pb.ListOrdersResponse:
    async with grpc.aio.insecure_channel(stack.db_addr) as channel:
        stub = db_service_pb2_grpc.DBServiceStub(channel)
        reply: pb.ListOrdersResponse = await stub.ListOrders(
            pb.ListOrdersRequest(page_size=100, include=INCLUDE_ALL, **fields),  # type: ignore[arg-type]
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=5,
        )
        return reply


async def _customer_with_an_order(client: httpx.AsyncClient) -> Account:
    product = await make_product(client, await admin_token(client), stock=5)
    user = await make_user(client)
    placed = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=user.auth
    )
    assert placed.status_code == 201
    return user


async def test_list_orders_refuses_a_token_older_than_a_password_change(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer whose token listed their orders
    user = await _customer_with_an_order(client)
    assert len((await _list(stack, user.token)).orders) == 1

    # when they change their password
    changed = await client.put(
        f"/api/v1/users/{user.sid}",
        json={"password": "another good password", "current_password": user.password},
        headers=user.auth,
    )
    assert changed.status_code == 200

    # then the very next ListOrders with the old token is refused
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _list(stack, user.token)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_list_orders_refuses_a_deactivated_user(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer with an order
    user = await _customer_with_an_order(client)

    # when they deactivate their account
    gone = await client.delete(f"/api/v1/users/{user.sid}", headers=user.auth)
    assert gone.status_code == 200

    # then the very next ListOrders is refused
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _list(stack, user.token)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_customer_asking_for_all_users_gets_only_their_own_orders_and_user(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given two customers with an order each
    me = await _customer_with_an_order(client)
    await _customer_with_an_order(client)

    # when one asks for every user's orders with their users
    reply = await _list(stack, me.token, all_users=True)

    # then the page and its users are theirs alone
    assert {o.user_sid for o in reply.orders} == {me.sid}
    assert [u.sid for u in reply.users] == [me.sid]
    assert {p.id for p in reply.products} == {o.product_id for o in reply.orders}


async def test_admin_asking_for_all_users_gets_every_owner(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given two customers with an order each
    first = await _customer_with_an_order(client)
    second = await _customer_with_an_order(client)

    # when the admin pages through every order with the users
    token, seen, page_token = await admin_token(client), set(), ""
    while True:
        reply = await _list(stack, token, all_users=True, page_token=page_token)
        seen |= {u.sid for u in reply.users}
        assert {u.id for u in reply.users} == {o.user_id for o in reply.orders}
        if not reply.next_page_token:
            break
        page_token = reply.next_page_token

    # then both owners came with their orders
    assert {first.sid, second.sid} <= seen
