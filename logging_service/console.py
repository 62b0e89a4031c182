"""The console tail: follow TailLogs and print each record as one report-style line.

A line reads `<unix seconds> - <label>: <text>`, e.g. `1732925683 - REST API: User 'peter' is
created`. The label is "GraphQL API" or "REST API" for the gateway's graphql/rest records, "DB
Service" for db_service, the service name otherwise. The text is the record's message, or a
sentence built from operation, user, outcome and duration when there is none.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

import grpc

from plumbing.futures import retrieve
from plumbing.grpcchannel import DIRECT
from plumbing.recent import RecentKeys
from protos import logging_service_pb2 as pb
from protos import logging_service_pb2_grpc

_LABELS = {("gateway", "graphql"): "GraphQL API", ("gateway", "rest"): "REST API"}
_SERVICE_LABELS = {
    "gateway": "Gateway",
    "db_service": "DB Service",
    "logging_service": "Logging Service",
}
_MAX_BACKOFF_S = 5.0
# How long a connection may take before the tail says what it is waiting for.
WAIT_NOTICE_S = 2.0
# Reconnecting cannot fix these: wrong target or a bad request.
_FATAL = frozenset({grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT})


def service_label(record: pb.LogRecord) -> str:
    """The report's name for the record's source, e.g. "REST API" or "DB Service"."""
    return (
        _LABELS.get((record.service, record.kind))
        or _SERVICE_LABELS.get(record.service)
        or record.service
        or "unknown"
    )


def format_line(record: pb.LogRecord) -> str:
    """One console line for `record`; always a single line, whatever the message holds."""
    if record.message:
        text = record.message
    elif record.outcome == "ok":
        text = f"{record.operation} by {record.user}: ok ({record.duration_ms:.1f} ms)"
    else:
        text = (
            f"error: {record.outcome} - {record.operation} by {record.user} "
            f"({record.duration_ms:.1f} ms)"
        )
    return f"{int(record.ts)} - {service_label(record)}: {' '.join(text.splitlines())}"


async def tail(
    target: str,
    *,
    from_beginning: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> None:
    """Print records until cancelled; after a disconnect, resume after the last one printed.
    A record seen lately (its batch re-sent: the same event_id) is not printed again.

    The stream has no deadline on purpose (it follows the topic); keepalive pings detect a
    dead peer, and each reconnect waits with backoff. While logging_service cannot be reached
    (not started yet, say), one line on `err` says so, and the tail keeps waiting for it.
    """
    offset: int | None = None
    seen = RecentKeys()  # a re-sent record is printed once
    delay = 0.2
    last_error = ""
    options = [DIRECT, ("grpc.keepalive_time_ms", 20_000), ("grpc.keepalive_timeout_ms", 10_000)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        stub = logging_service_pb2_grpc.LoggingServiceStub(channel)
        while True:
            if offset is not None:
                request = pb.TailLogsRequest(offset=offset)
            else:
                request = pb.TailLogsRequest(from_beginning=from_beginning or None)
            call = stub.TailLogs(request, wait_for_ready=True)
            # The service sends its initial metadata once the stream is positioned.
            positioned = asyncio.ensure_future(call.initial_metadata())
            positioned.add_done_callback(retrieve)
            try:
                if not (await asyncio.wait({positioned}, timeout=WAIT_NOTICE_S))[0]:
                    notice = f"tail: waiting for logging_service at {target} (is it running?)"
                    if notice != last_error:
                        print(notice, file=err, flush=True)
                        last_error = notice
                async for record in call:
                    if seen.first_time(record.event_id):
                        print(format_line(record), file=out, flush=True)
                    offset = record.offset + 1
                    delay, last_error = 0.2, ""
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _FATAL:
                    raise
                error = f"tail: {exc.code().name} ({exc.details()}); reconnecting"
                if error != last_error:  # once per outage, not once per attempt
                    print(error, file=err, flush=True)
                    last_error = error
            finally:
                positioned.cancel()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)
