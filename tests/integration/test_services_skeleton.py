"""The walking skeleton: every service starts, answers health and reflection, and the gateway
serves welcome, liveness and readiness."""

from __future__ import annotations

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.conftest import Stack
from tests.factories import gql


async def test_graphql_welcome(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ welcome }")

    assert "Merch Store" in body["data"]["welcome"]


async def test_rest_welcome(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1")

    assert response.status_code == 200
    assert "Merch Store" in response.json()["message"]


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    live = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert live.status_code == 200
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "dependencies": {"db_service": "SERVING", "logging_service": "SERVING"},
        "log_spool": "ok",
    }


@pytest.mark.parametrize(
    ("target", "service"),
    [("db_addr", "merch.v1.DBService"), ("logging_addr", "merch.v1.LoggingService")],
)
async def test_grpc_health_and_reflection(stack: Stack, target: str, service: str) -> None:
    async with grpc.aio.insecure_channel(getattr(stack, target)) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        listed = [
            reply
            async for reply in reflection_pb2_grpc.ServerReflectionStub(
                channel
            ).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
        ]

    names = {s.name for s in listed[0].list_services_response.service}
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert {service, "grpc.health.v1.Health"} <= names


async def test_metrics_are_exposed(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert "gateway_grpc_calls_total" in response.text
