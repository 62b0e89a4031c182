"""What db_service writes while PostgreSQL is away: a line per failure, never a traceback.

An operator reads db_service's output to see an outage; a library's traceback for a failure
that is expected and retried (the connection pool reconnecting) buries the lines that say what
is wrong, and our logs carry no tracebacks (CONVENTIONS 12).
"""

from __future__ import annotations

from tests.conftest import wait_until
from tests.faults.conftest import Faulty

POOL_RECONNECT = "Failed to restore the pool connection floor"


def test_a_lost_postgres_is_reported_without_tracebacks(faulty: Faulty) -> None:
    # given db_service serving, its pool connected to PostgreSQL
    faulty.wait_db_status("SERVING")
    db_service = faulty.own.processes["db_service"]

    # when PostgreSQL stops under it, until the pool has failed to reconnect and the health
    # probe has seen it too
    faulty.postgres.stop()
    try:
        wait_until(
            lambda: any(POOL_RECONNECT in line for line in db_service.tail()),
            timeout=15,
            message="db_service never reported its pool failing to reconnect",
        )
        faulty.wait_db_status("NOT_SERVING", timeout=5)
        lines = db_service.tail()
    finally:
        faulty.restore()

    # then each failure is one line with its reason, and no traceback follows it
    output = "\n".join(lines)
    assert "Traceback" not in output, output
    assert not any(line.lstrip().startswith('File "') for line in lines), output
    reported = next(line for line in lines if POOL_RECONNECT in line)
    assert reported.endswith(")"), reported
