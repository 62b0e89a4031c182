"""What one grpc.aio round trip costs on this machine: a unary call against a message pair on an
open bidirectional stream, in CPU of the client and of the server (two processes, loopback).

    .venv/bin/python -m bench.grpcfloor            # 20,000 round trips of each
    .venv/bin/python -m bench.grpcfloor --calls 2000

A coalesced product read pays this floor once per call, however many ids it carries; with two
gateway workers each call carries half as many (bench/README.md, "Sixth session"). The server
echoes a 1,200-byte payload (a reply of ~15 products) and the unary call carries one
`x-request-id`, as the gateway's do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from bench.procstats import read_stat
from scripts.processes import free_port

_SERVICE = "bench.Echo"
_PAYLOAD = b"x" * 1200
_WARM_UP = 500
_READY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Floor:
    """CPU per round trip of one kind, in microseconds."""

    kind: str
    client_us: float
    server_us: float
    wall_us: float


def _same(message: bytes) -> bytes:
    return message


async def _serve(port: int) -> None:
    async def unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    async def stream(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        async for message in requests:
            yield message

    handler = grpc.method_handlers_generic_handler(
        _SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, _same, _same),
            "Stream": grpc.stream_stream_rpc_method_handler(stream, _same, _same),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def _cpu_s(pid: int) -> float:
    stat = read_stat(pid)
    if stat is None:
        raise RuntimeError(f"process {pid} is gone")
    return stat.cpu_s


async def _measure(port: int, server_pid: int, calls: int) -> list[Floor]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), _READY_TIMEOUT_S)
        unary = channel.unary_unary(f"/{_SERVICE}/Unary", _same, _same)
        metadata = (("x-request-id", "0" * 32),)

        async def one_call() -> None:
            await unary(_PAYLOAD, metadata=metadata)

        call = channel.stream_stream(f"/{_SERVICE}/Stream", _same, _same)()

        async def one_message() -> None:
            await call.write(_PAYLOAD)
            await call.read()

        floors = []
        for kind, round_trip in (("unary call", one_call), ("stream message pair", one_message)):
            for _ in range(_WARM_UP):
                await round_trip()
            mine, theirs, started = _cpu_s(os.getpid()), _cpu_s(server_pid), time.perf_counter()
            for _ in range(calls):
                await round_trip()
            floors.append(
                Floor(
                    kind,
                    client_us=(_cpu_s(os.getpid()) - mine) / calls * 1e6,
                    server_us=(_cpu_s(server_pid) - theirs) / calls * 1e6,
                    wall_us=(time.perf_counter() - started) / calls * 1e6,
                )
            )
        await call.done_writing()
        return floors


def measure(calls: int) -> list[Floor]:
    """Start an echo server process, time `calls` round trips of each kind, stop it."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.grpcfloor", "--serve", str(port)],
        stdin=subprocess.DEVNULL,
    )
    try:
        return asyncio.run(_measure(port, server.pid, calls))
    finally:
        server.terminate()
        try:
            server.wait(timeout=_READY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpcfloor", description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000, help="round trips of each kind")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return 0
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    print(f"grpc.aio round trips of {len(_PAYLOAD)} bytes, {args.calls} of each", flush=True)
    for floor in measure(args.calls):
        print(
            f"{floor.kind:<20} client {floor.client_us:6.0f} us  server {floor.server_us:6.0f} us"
            f"  wall {floor.wall_us:6.0f} us  (CPU per round trip)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
