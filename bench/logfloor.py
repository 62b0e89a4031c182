"""What the log pipeline downstream of a shipper costs: CPU of logging_service and of the broker
per `StreamLogBatches` call and per record, on real processes (the Tansu broker, `python -m
logging_service`), sent through the shippers' own `LogChannel`.

    .venv/bin/python -m bench.logfloor                         # 10 calls/s, 8 s per size
    .venv/bin/python -m bench.logfloor --rate 5 --seconds 20 --records 640

Calls of 2 records, then of `--records` (the size of a shipper's batch at ~3,000 req/s and
LOG_FLUSH_INTERVAL_S=0.2), are made at the same rate, so the CPU of each size over its calls
is `per_call + records * per_record` for both, and the two give each part. Each call's records
are a gateway REST record and a db_service RPC record per request, as encoded by LogShipper.
The per-call part is what a longer LOG_FLUSH_INTERVAL_S saves: a shipper makes at most one call
per interval until its batch reaches LOG_BATCH_MAX (bench/README.md, "Fifteenth session").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import time
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.procstats import read_stat
from logging_service.encoding import RecordEncoder, encode
from logging_service.wire import LogChannel
from scripts.infra import ManagedProcess, TansuBroker, free_port

_HOST = "127.0.0.1"
_READY_TIMEOUT_S = 30.0
_SMALL = 2
_WARM_UP_CALLS = 20


@dataclass(frozen=True)
class Floor:
    """CPU in microseconds of one process: per call, and per record on top of it."""

    process: str
    per_call_us: float
    per_record_us: float


@dataclass(frozen=True)
class _Run:
    calls: int
    records: int
    cpu_s: dict[str, float]


def _records(count: int) -> list[bytes]:
    """`count` serialized records: a gateway REST record and a db_service RPC record per request."""
    gateway, db_service = RecordEncoder("gateway"), RecordEncoder("db_service")
    ids = itertools.count()
    records: list[bytes] = []
    for n in range(count):
        now = time.time()
        if n % 2 == 0:
            middle = gateway.middle(
                "rest", "GET /api/v1/products/{id}", "anonymous", "ok", now, 1.2
            )
            tail = gateway.tail("")
        else:
            middle = db_service.middle("rpc", "DBService/GetProduct", "anonymous", "ok", now, 0.8)
            tail = db_service.tail("")
        request_id = f"{n // 2:032x}"
        records.append(encode(f"{next(ids):032x}", middle, request_id, tail))
    return records


def _cpu_s(pid: int) -> float:
    stat = read_stat(pid)
    if stat is None:
        raise RuntimeError(f"process {pid} is gone")
    return stat.cpu_s


async def _serving(address: str, process: ManagedProcess) -> None:
    """Wait until logging_service reports SERVING (it has reached the broker)."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"logging_service exited: {process.tail()[-5:]}")
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"logging_service not serving within {_READY_TIMEOUT_S:g} s")
            await asyncio.sleep(0.1)


async def _run(
    channel: LogChannel, pids: dict[str, int], size: int, rate: float, seconds: float
) -> _Run:
    records = _records(size)
    for _ in range(_WARM_UP_CALLS):
        await channel.send(records)
    before = {name: _cpu_s(pid) for name, pid in pids.items()}
    period, calls, started = 1 / rate, 0, time.monotonic()
    while time.monotonic() - started < seconds:
        acknowledged = await channel.send(records)
        if acknowledged != size:
            raise RuntimeError(f"{acknowledged} of {size} records acknowledged")
        calls += 1
        await asyncio.sleep(max(started + calls * period - time.monotonic(), 0.0))
    cpu = {name: _cpu_s(pid) - before[name] for name, pid in pids.items()}
    return _Run(calls, calls * size, cpu)


async def _measure(
    address: str, pids: dict[str, int], large: int, rate: float, seconds: float
) -> list[Floor]:
    channel = LogChannel(address, call_timeout_s=10.0)
    try:
        small_run = await _run(channel, pids, _SMALL, rate, seconds)
        large_run = await _run(channel, pids, large, rate, seconds)
    finally:
        await channel.close()
    floors = []
    for name in pids:
        # CPU per call of each size: per_call + size * per_record; two sizes, two unknowns.
        small = small_run.cpu_s[name] / small_run.calls
        per_record = (large_run.cpu_s[name] / large_run.calls - small) / (large - _SMALL)
        floors.append(Floor(name, (small - _SMALL * per_record) * 1e6, per_record * 1e6))
    return floors


def measure(*, records: int = 640, rate: float = 10.0, seconds: float = 8.0) -> list[Floor]:
    """Start the broker and logging_service, time both call sizes, stop them."""
    if records <= _SMALL:
        raise ValueError(f"records must be more than {_SMALL}")
    with contextlib.ExitStack() as resources:
        quiet = resources.enter_context(open(os.devnull, "w"))
        # die_with_parent: a bench killed outright (SIGTERM, SIGKILL, a closed terminal's
        # SIGHUP) runs no cleanup, and its children live in sessions of their own.
        broker = resources.enter_context(
            TansuBroker(free_port(), output=quiet, die_with_parent=True)
        )
        address = f"{_HOST}:{free_port()}"
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "LOGGING_SERVICE_LISTEN": address,
            "MERCH_ENV": "development",
        }
        service = ManagedProcess(
            "logging_service",
            [sys.executable, "-m", "logging_service"],
            env=env,
            output=quiet,
            die_with_parent=True,
        )
        service.start()
        resources.callback(service.stop)
        pids = {"logging_service": service.pid, "broker": broker.pid}

        async def run() -> list[Floor]:
            await _serving(address, service)
            return await _measure(address, pids, records, rate, seconds)

        return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.logfloor", description=__doc__)
    parser.add_argument("--records", type=int, default=640, help="records of a large call")
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=8.0, help="time per call size")
    args = parser.parse_args(argv)
    if args.records <= _SMALL or args.rate <= 0 or args.seconds <= 0:
        parser.error(f"need --records > {_SMALL}, --rate > 0 and --seconds > 0")
    print(
        f"StreamLogBatches calls of {_SMALL} and of {args.records} records, {args.rate:g} a"
        f" second, {args.seconds:g} s each (about {2 * args.seconds + 5:.0f} s)",
        flush=True,
    )
    for floor in measure(records=args.records, rate=args.rate, seconds=args.seconds):
        print(
            f"{floor.process:<16} {floor.per_call_us:7.0f} us per call"
            f"  + {floor.per_record_us:5.2f} us per record  (CPU)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
