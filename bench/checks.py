"""Before a scenario is timed, its requests are sent one by one and every answer is judged.

A scenario whose answers are wrong is not timed: fast wrong answers are not a result. The first
request is sent between two scrapes of the gateway's /metrics, which gives the exact number of
gRPC calls one request costs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from bench import metrics
from bench.probes import Probe
from bench.scenarios import BenchData, Scenario, Skip
from bench.stack import Target

SAMPLE = 25


@dataclass(frozen=True)
class CheckResult:
    """How a scenario's check went on one target."""

    checked: int
    problem: str | None = None
    skipped: str | None = None
    grpc_calls_per_request: float | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.skipped is None


def sample_evenly(probes: Sequence[Probe], limit: int) -> list[Probe]:
    """At most `limit` probes spread over the list, always with the first and the last."""
    if len(probes) <= limit:
        return list(probes)
    step = (len(probes) - 1) / (limit - 1)
    return [probes[round(i * step)] for i in range(limit)]


def send(client: httpx.Client, base_url: str, probe: Probe) -> str | None:
    """Send one probe; the problem with its answer, or None."""
    request = probe.request
    if request.dynamic:
        request = request.with_key(f"check-{uuid.uuid4().hex}")
    try:
        response = client.request(
            request.method,
            base_url + request.path,
            headers=dict(request.headers),
            content=request.body.encode() if request.body is not None else None,
        )
    except httpx.HTTPError as exc:
        return f"{request.method} {request.path}: {type(exc).__name__} {exc}"
    body: Any
    try:
        body = json.loads(response.text, parse_float=Decimal)
    except ValueError:
        body = response.text
    problem = probe.expect(response.status_code, body)
    return f"{request.method} {request.path}: {problem}" if problem else None


def check_scenario(
    client: httpx.Client, scenario: Scenario, target: Target, data: BenchData
) -> CheckResult:
    """Prepare the scenario if it needs it, then judge a sample of its requests."""
    if scenario.prepare is not None:
        try:
            scenario.prepare(client, target.url, data)
        except Skip as exc:
            return CheckResult(checked=0, skipped=str(exc))
    chosen = sample_evenly(scenario.build(data), SAMPLE)
    before = metrics.scrape(client, target.metrics_url)
    problem = send(client, target.url, chosen[0])
    after = metrics.scrape(client, target.metrics_url)
    calls = metrics.delta(before, after, metrics.GRPC_CALLS)
    if problem is not None:
        return CheckResult(checked=1, problem=problem, grpc_calls_per_request=calls)
    for index, probe in enumerate(chosen[1:], start=2):
        problem = send(client, target.url, probe)
        if problem is not None:
            return CheckResult(checked=index, problem=problem, grpc_calls_per_request=calls)
    return CheckResult(checked=len(chosen), grpc_calls_per_request=calls)
