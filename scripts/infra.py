"""PostgreSQL and a Kafka-protocol broker from wheels, run as foreground children of this process.

Used by `make run` (scripts/devstack.py) and by the test fixtures. Nothing is daemonised:
when we stop, or die, the servers go with us.

    with EmbeddedPostgres(tmp / "pgdata", free_port()) as pg, TansuBroker(free_port()) as kafka:
        dsn = pg.ensure_database("merch")
        ...
"""

from __future__ import annotations

from scripts.postgres import EmbeddedPostgres
from scripts.processes import ManagedProcess, PortInUseError, free_port, port_is_free
from scripts.servers import ServerStartError
from scripts.tansu import TansuBroker

__all__ = [
    "EmbeddedPostgres",
    "ManagedProcess",
    "PortInUseError",
    "ServerStartError",
    "TansuBroker",
    "free_port",
    "port_is_free",
]
