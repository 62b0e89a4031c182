"""db_service serves Prometheus metrics on DB_METRICS_PORT: RPCs per method and outcome, pool."""

from __future__ import annotations

import grpc
import httpx
import pytest

from protos import db_service_pb2 as pb
from protos import db_service_pb2_grpc
from scripts.processes import free_port
from tests.conftest import Stack, start_service, wait_until


def _scrape(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except httpx.HTTPError:
        return ""


def test_rpcs_and_pool_usage_are_exposed(stack: Stack) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    env = dict(
        stack.env,
        DB_SERVICE_LISTEN=f"127.0.0.1:{grpc_port}",
        DB_METRICS_PORT=str(metrics_port),
        ADMIN_SID="",
        ADMIN_USERNAME="",
        ADMIN_PASSWORD="",
    )
    proc = start_service("db_service", env, stack.log_dir)
    try:
        wait_until(
            lambda: "db_service_pool_size" in _scrape(metrics_port),
            timeout=30,
            message="db_service never served its metrics",
        )
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = db_service_pb2_grpc.DBServiceStub(channel)
            # The metrics port opens with the pool, a moment before the gRPC port.
            stub.GetProduct(pb.GetProductRequest(id=1), timeout=30, wait_for_ready=True)
            with pytest.raises(grpc.RpcError) as missing:
                stub.GetProduct(pb.GetProductRequest(id=999999), timeout=5)
        text = _scrape(metrics_port)
    finally:
        proc.stop(timeout=10)

    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert 'db_service_rpcs_total{method="GetProduct",outcome="ok"} 1.0' in text
    assert 'db_service_rpcs_total{method="GetProduct",outcome="NOT_FOUND"} 1.0' in text
    assert "db_service_pool_in_use" in text
