"""`--workers N`: product(id), orders(first: 50) and placeOrder on a gateway of N worker processes,
timed in the same rounds as the one-process gateway and the baseline, and how evenly the kernel
spread the connections' requests over the workers (README "Scaling out")."""

from __future__ import annotations

import re

from bench.stack import WORKERS_TARGET
from bench.summary import Goal, Row

_PER_WORKER = re.compile(r'^gateway_worker_http_requests\{pid="(\d+)"\} (\S+)$', re.M)


def requests_per_worker(metrics_text: str) -> dict[str, float]:
    """HTTP requests each live worker received, by pid, from the gateway's /metrics."""
    return {pid: float(value) for pid, value in _PER_WORKER.findall(metrics_text)}


def busiest_share(before: dict[str, float], after: dict[str, float]) -> float | None:
    """The largest fraction of the requests between two scrapes that one worker served."""
    served = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    total = sum(served.values())
    return max(served.values()) / total if total > 0 else None


def goals(rows: list[Row], workers: int, share: float | None) -> list[Goal]:
    """The scale-out targets: product(id) against the baseline, orders/s, the spread."""
    on = {r.scenario: r for r in rows if r.target == WORKERS_TARGET}
    product = on.get("gql_product_var")
    place = on.get("gql_place_order")
    ratio = product.ratio if product else None
    return [
        Goal(
            f"product(id), {workers} gateway workers",
            ">= 0.85x baseline",
            "not measured" if ratio is None else f"{ratio:.3f}x",
            None if ratio is None else ratio >= 0.85,
        ),
        Goal(
            f"placeOrder throughput, {workers} gateway workers",
            ">= 1000 orders/s",
            f"{place.rps:.0f}/s" if place else "not measured",
            place.rps >= 1000 if place else None,
        ),
        Goal(
            "worker spread (busiest worker's share)",
            "<= 60 %",
            "not measured" if share is None else f"{share * 100:.0f} %",
            None if share is None else share <= 0.6,
        ),
    ]
