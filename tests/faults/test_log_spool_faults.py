"""Matrix, the log spool under faults, with real processes: a gateway killed with SIGKILL under
load loses at most its last LOG_SPOOL_SYNC_MS of records (none with LOG_DURABILITY=sync), a
logging service away for longer than the memory queue could bridge loses nothing, and a spool
that cannot be written or is full fails no request and counts what it drops, and two
gateways on one spool directory each lock a slot of their own."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from logging_service.spool import DiskSpool
from tests.conftest import Stack, start_service, wait_until
from tests.logtopic import read_all
from tests.ownstack import OwnStack, own_services, wait_started

SYNC_MS = 50
# The writer thread needs the GIL and a core to run its turn; on a loaded 2-core machine that
# can come late by a few scheduler slices. A record answered earlier than this must be there.
SCHEDULING_SLACK_S = 0.1
WELCOME = {"query": "{ welcome }"}


@dataclass(frozen=True)
class Answered:
    request_id: str
    at: float  # time.monotonic() when the response arrived


def _topic() -> str:
    return f"log-spool-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


async def _load(
    url: str, stop: asyncio.Event, answered: list[Answered], workers: int, pause_s: float = 0.0
) -> int:
    """Requests from `workers` clients until `stop` or the gateway dies, each pausing `pause_s`
    between requests (a pace, so the machine stays usable); returns the non-200 answers."""
    failures = 0

    async def worker(n: int) -> None:
        nonlocal failures
        async with httpx.AsyncClient(base_url=url, timeout=5) as c:
            i = 0
            while not stop.is_set():
                rid = f"spool-{n}-{i}-{uuid.uuid4().hex[:8]}"
                i += 1
                try:
                    r = await c.post("/graphql", json=WELCOME, headers={"X-Request-ID": rid})
                except httpx.HTTPError:
                    return  # the gateway is gone
                if r.status_code == 200:
                    answered.append(Answered(rid, time.monotonic()))
                else:
                    failures += 1
                if pause_s:
                    await asyncio.sleep(pause_s)

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return failures


async def _until(predicate: object, within: float, message: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s: {message}")
        await asyncio.sleep(0.01)


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def _drained(url: str) -> bool:
    try:
        return _metric(url, "gateway_log_queue_depth") == 0
    except httpx.HTTPError:
        return False


async def _gateway_request_ids(stack: Stack, topic: str) -> set[str]:
    return {r["request_id"] for r in await read_all(stack.kafka_bootstrap, topic)}


async def _kill_under_load_and_restart(
    stack: Stack, own: OwnStack, *, workers: int = 6, answered_before_kill: int = 300
) -> tuple[list[Answered], float]:
    """Load the gateway, SIGKILL it mid-load, start it again on the same spool; wait until the
    new one has shipped everything. Returns the answered requests and the time of the kill."""
    answered: list[Answered] = []
    stop = asyncio.Event()
    load = asyncio.create_task(_load(own.gateway_url, stop, answered, workers))
    await _until(lambda: len(answered) >= answered_before_kill, 30, "the load never got going")
    killed_at = time.monotonic()
    os.kill(own.processes["gateway"].pid, signal.SIGKILL)
    stop.set()
    await load
    own.processes["gateway"].wait(timeout=10)

    own.processes["gateway"] = start_service("gateway", own.env, stack.log_dir)
    await asyncio.to_thread(wait_started, own)
    await asyncio.to_thread(
        wait_until,
        lambda: _drained(own.gateway_url),
        timeout=30,
        message="the restarted gateway never shipped its spool",
    )
    return answered, killed_at


@pytest.fixture
def pipeline(stack: Stack, spool_dir: Path, request: pytest.FixtureRequest) -> Iterator[OwnStack]:
    """A logging service on a topic of its own, and a gateway spooling to `spool_dir`.

    Batches leave every 2 s: records waiting only in memory would all die with the process;
    on disk, the flush interval no longer decides what a crash loses.
    """
    durability = getattr(request, "param", "batch")
    with own_services(
        stack,
        ("logging_service", "gateway"),
        KAFKA_TOPIC=_topic(),
        LOG_SPOOL_DIR=str(spool_dir),
        LOG_SPOOL_SYNC_MS=str(SYNC_MS),
        LOG_DURABILITY=durability,
        LOG_FLUSH_INTERVAL_S="2",
    ) as own:
        yield own


async def test_a_killed_gateway_loses_at_most_its_last_sync_interval(
    stack: Stack, pipeline: OwnStack
) -> None:
    # given a gateway under load, killed with SIGKILL, and started again on the same spool
    answered, killed_at = await _kill_under_load_and_restart(stack, pipeline)

    # when its records are read from the topic
    recorded = await _gateway_request_ids(stack, pipeline.env["KAFKA_TOPIC"])

    # then every answered request has its record, except some answered in the last interval
    missing = [a for a in answered if a.request_id not in recorded]
    ages_ms = sorted(round((killed_at - a.at) * 1000, 1) for a in missing)
    print(
        f"\nLOG_DURABILITY=batch, kill -9 under load: {len(missing)} of {len(answered)} answered"
        f" requests have no record; answered {ages_ms[-1] if ages_ms else 0} ms or less before"
        f" the kill (LOG_SPOOL_SYNC_MS={SYNC_MS})"
    )
    assert all(age <= SYNC_MS + SCHEDULING_SLACK_S * 1000 for age in ages_ms), ages_ms


@pytest.mark.parametrize("pipeline", ["sync"], indirect=True)
async def test_a_killed_gateway_in_sync_mode_loses_no_answered_request(
    stack: Stack, pipeline: OwnStack
) -> None:
    # given a gateway answering only once its records are on disk, killed under load
    answered, _ = await _kill_under_load_and_restart(stack, pipeline)

    # when its records are read from the topic
    recorded = await _gateway_request_ids(stack, pipeline.env["KAFKA_TOPIC"])

    # then every request that got an answer has its record
    missing = [a.request_id for a in answered if a.request_id not in recorded]
    print(f"\nLOG_DURABILITY=sync, kill -9 under load: 0 of {len(answered)} may be missing")
    assert missing == []


async def _outage(stack: Stack, own: OwnStack, outage_s: float) -> None:
    """Load through a logging-service outage of `outage_s`: nothing dropped, lost or failed."""
    answered: list[Answered] = []
    stop = asyncio.Event()
    load = asyncio.create_task(_load(own.gateway_url, stop, answered, workers=4, pause_s=0.02))
    await _until(lambda: len(answered) >= 50, 30, "the load never got going")
    await asyncio.to_thread(own.processes["logging_service"].stop, 10)
    down_from = len(answered)
    await asyncio.sleep(outage_s)  # the outage itself: its length is what is tested
    during = len(answered) - down_from
    own.processes["logging_service"] = start_service("logging_service", own.env, stack.log_dir)
    await asyncio.to_thread(wait_started, own)
    stop.set()
    failures = await load
    await asyncio.to_thread(
        wait_until, lambda: _drained(own.gateway_url), timeout=60, message="backlog not shipped"
    )

    recorded = await _gateway_request_ids(stack, own.env["KAFKA_TOPIC"])
    missing = [a.request_id for a in answered if a.request_id not in recorded]
    queue_max = int(own.env["LOG_QUEUE_MAX"])
    print(f"\n{outage_s:.0f} s outage: {during} requests answered while it lasted")
    assert during > queue_max, "the load must outrun the memory queue the spool replaces"
    assert failures == 0
    assert missing == []
    assert _metric(own.gateway_url, "gateway_log_records_dropped_total") == 0
    # What piled up beyond the memory the spool keeps for the sender came back from its files.
    assert _metric(own.gateway_url, "gateway_log_spool_read_back_records_total") > 0


@pytest.fixture
def small_queue(stack: Stack, spool_dir: Path) -> Iterator[OwnStack]:
    """The pipeline with a memory queue far smaller than the outage's records."""
    with own_services(
        stack,
        ("logging_service", "gateway"),
        KAFKA_TOPIC=_topic(),
        LOG_SPOOL_DIR=str(spool_dir),
        LOG_QUEUE_MAX="200",
    ) as own:
        yield own


async def test_a_logging_service_outage_longer_than_the_queue_loses_nothing(
    stack: Stack, small_queue: OwnStack
) -> None:
    await _outage(stack, small_queue, outage_s=5)


@pytest.mark.slow
async def test_a_60_s_logging_service_outage_loses_nothing(
    stack: Stack, small_queue: OwnStack
) -> None:
    await _outage(stack, small_queue, outage_s=60)


async def test_an_unwritable_spool_degrades_readiness_and_fails_no_request(
    stack: Stack, tmp_path: Path
) -> None:
    # given a spool directory that cannot be created (its parent is a file: root ignores
    # permission bits, not this)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with own_services(
        stack, ("logging_service", "gateway"), KAFKA_TOPIC=_topic(), LOG_SPOOL_DIR=str(blocker)
    ) as own:
        # when users call the gateway
        async with httpx.AsyncClient(base_url=own.gateway_url, timeout=10) as c:
            ids = [f"ro-{n}-{uuid.uuid4().hex[:8]}" for n in range(20)]
            statuses = [
                (await c.post("/graphql", json=WELCOME, headers={"X-Request-ID": rid})).status_code
                for rid in ids
            ]
            ready = await c.get("/readyz")
        await asyncio.to_thread(
            wait_until, lambda: _drained(own.gateway_url), timeout=30, message="not shipped"
        )
        recorded = await _gateway_request_ids(stack, own.env["KAFKA_TOPIC"])

    # then every request succeeded, readiness says degraded (still 200) and why, and the
    # records still travel (kept in memory, as without a spool)
    assert statuses == [200] * 20
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert "cannot use log spool" in ready.json()["log_spool"]
    assert set(ids) <= recorded


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a disk that fills up. Needs the right to mount (root in a container)."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


async def test_a_full_disk_fails_no_request_and_counts_the_drops(
    stack: Stack, tiny_disk: Path
) -> None:
    # given a gateway whose spool is on a 64 KiB disk, and no logging service to empty it
    with own_services(
        stack,
        ("gateway",),
        LOGGING_SERVICE_ADDR="127.0.0.1:9",
        LOG_SPOOL_DIR=str(tiny_disk / "spool"),
    ) as own:
        # when far more than 64 KiB of records are made
        async with httpx.AsyncClient(base_url=own.gateway_url, timeout=10) as c:
            statuses = [(await c.post("/graphql", json=WELCOME)).status_code for _ in range(600)]
        await asyncio.to_thread(
            wait_until,
            lambda: _metric(own.gateway_url, "gateway_log_spool_degraded") == 1,
            timeout=10,
            message="the full disk was never reported",
        )
        dropped = _metric(own.gateway_url, "gateway_log_records_dropped_total")

    # then every request succeeded and the records that did not fit were counted
    assert statuses == [200] * 600
    assert dropped > 0


async def test_a_full_disk_stays_reported_while_small_writes_squeeze_in(tiny_disk: Path) -> None:
    # given a spool on a 64 KiB disk that refused a turn larger than the disk
    spool = DiskSpool(
        tiny_disk / "spool", max_bytes=1 << 30, sync_interval_s=0.01, max_pending=10_000
    )
    await spool.open()
    try:
        for _ in range(400):
            spool.append(b"x" * 300, 0.0)
        await spool.settled()
        refused = spool.stats()

        # when a few records, one turn at a time, still fit into what is left
        after = []
        for _ in range(5):
            spool.append(b"y" * 300, 0.0)
            await spool.settled()
            after.append(spool.stats().degraded)
    finally:
        await spool.close()

    # then the disk is reported full all along (the report does not flap with each turn's size)
    assert refused.degraded
    assert refused.lost == 400
    assert after == [refused.degraded] * 5


def test_two_gateways_on_one_spool_directory_never_share_a_spool(
    stack: Stack, pipeline: OwnStack, spool_dir: Path
) -> None:
    # given a gateway running on its spool directory
    first = pipeline.processes["gateway"]

    # when a second gateway is started on the same directory (a replica on a shared volume)
    with own_services(stack, ("gateway",), LOG_SPOOL_DIR=str(spool_dir)) as own:
        second = own.processes["gateway"]
        holders = {
            slot.name: (slot / "spool.lock").read_text().strip()
            for slot in sorted(spool_dir.glob("slot-*"))
        }

    # then each holds a slot of its own
    assert holders == {"slot-0": str(first.pid), "slot-1": str(second.pid)}
