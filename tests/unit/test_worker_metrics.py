"""Scrape-time gauges mirrored by several workers (plumbing.workermetrics): each is combined
across the workers as its meaning asks, summed or the largest. Two real processes write the
multiprocess files, as two workers do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from plumbing.workermetrics import summing_registry

# A db_service worker's mirror, once: its relay counted the shared outbox (100 rows), its
# shipper holds 5 records, the oldest 10 s old (logging_service away for 10 s).
_WORKER = """
from types import SimpleNamespace
from db_service.metrics import LARGEST_OVER_WORKERS, PoolCollector
from db_service.outbox import Outbox
from logging_service.client import ShipperStats
from plumbing.workermetrics import CollectorMirror

pool = SimpleNamespace(get_size=lambda: 2, get_idle_size=lambda: 1, get_max_size=lambda: 10)
outbox = Outbox(max_rows=1000)
outbox.rows = 100
stats = ShipperStats(sent=0, resent=0, dropped=0, queued=5, oldest_unacked_age_s=10.0)
shipper = SimpleNamespace(stats=stats)
CollectorMirror(PoolCollector(pool, shipper, outbox), largest=LARGEST_OVER_WORKERS).sample()
"""


def test_shared_counts_and_ages_are_not_summed_over_workers(tmp_path: Path) -> None:
    # given two db_service workers that mirrored their scrape-time metrics
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", _WORKER], env=env, check=True, timeout=60)

    # when the supervisor's metrics port is scraped (the workers' files together)
    values = {
        sample.name: sample.value
        for family in summing_registry(tmp_path).collect()
        for sample in family.samples
    }

    # then what each worker holds is summed, but the one outbox table is not counted twice,
    # and the oldest record waiting is 10 s old, not 20
    assert values["db_service_log_queue_depth"] == 10
    assert values["db_service_pool_size"] == 4
    assert values["db_service_log_outbox_rows"] == 100
    assert values["db_service_log_oldest_unacked_seconds"] == 10
