"""README's metric table names exactly the metric families each service exports.

The table is written by hand (the configuration table is generated; this one is not), and it
had drifted: counters named without the `_total` Prometheus gives them, so an alert written
from it found nothing, and families an operator needs left out. Each service is scraped for
real and its families (`# TYPE` lines) compared with the table's rows, both ways.
"""

from __future__ import annotations

import re

import httpx

from scripts.processes import free_port
from tests.conftest import ROOT, Stack
from tests.ownstack import own_services

SERVICES = ("gateway", "db_service", "logging_service")
# prometheus-client writes a counter's or histogram's creation time as a family of its own.
_CREATED = "_created"
_TYPE = re.compile(r"^# TYPE (\S+) ", re.MULTILINE)


def _documented() -> dict[str, set[str]]:
    """The table's metric names by service; `db_service_log_*` stands for the gateway's
    `gateway_log_*` rows under db_service's prefix, as the table says."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    header = "| metric | labels | what it measures |"
    assert header in text, "README has no metric table under Health and metrics"
    table = text.split(header, 1)[1].split("\n\n", 1)[0]
    names = [
        name
        for row in table.splitlines()[2:]
        for name in re.findall(r"`([a-z_*]+)`", row.split("|")[1])
    ]
    documented: dict[str, set[str]] = {service: set() for service in SERVICES}
    for name in names:
        service = next(s for s in sorted(SERVICES, key=len, reverse=True) if name.startswith(s))
        documented[service].add(name)
    pattern = "db_service_log_*"
    assert pattern in documented["db_service"], "the table no longer says db_service_log_*"
    documented["db_service"].remove(pattern)
    documented["db_service"] |= {
        "db_service_" + n.removeprefix("gateway_")
        for n in documented["gateway"]
        if n.startswith("gateway_log_")
    }
    return documented


def _families(url: str, prefix: str) -> set[str]:
    text = httpx.get(url, timeout=5).text
    return {
        name
        for name in _TYPE.findall(text)
        if name.startswith(prefix + "_") and not name.endswith(_CREATED)
    }


def test_readme_names_every_metric_family_each_service_exports(stack: Stack) -> None:
    # given a logging_service and a db_service of their own with their metrics ports open
    # (the stack's run without them), beside the stack's gateway
    db_metrics, log_metrics = free_port(), free_port()
    with own_services(
        stack,
        ("logging_service", "db_service"),
        DB_METRICS_PORT=str(db_metrics),
        LOGGING_METRICS_PORT=str(log_metrics),
    ):
        # when each service's /metrics is read (a labelled family has its `# TYPE` line
        # before its first child)
        exported = {
            "gateway": _families(f"{stack.gateway_url}/metrics", "gateway"),
            "db_service": _families(f"http://127.0.0.1:{db_metrics}/metrics", "db_service"),
            "logging_service": _families(
                f"http://127.0.0.1:{log_metrics}/metrics", "logging_service"
            ),
        }

    # then README's table names each family, and nothing else
    documented = _documented()
    for service in SERVICES:
        assert exported[service] == documented[service], service
