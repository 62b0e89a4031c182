"""Devstack.stop: newest first, the gateway and db_service together, each within the budget."""

from __future__ import annotations

import threading

from scripts.devstack import Devstack, DevstackConfig


class Child:
    """A stoppable that notes its stop, and can wait inside it for another child's to begin."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.stopping = threading.Event()
        self.waits_for: Child | None = None
        self.saw_partner = False
        self.timeout = 0.0

    def stop(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.log.append(self.name)
        self.stopping.set()
        if self.waits_for is not None:
            # a flush of its log: does the other shipper stop meanwhile, or only after?
            self.saw_partner = self.waits_for.stopping.wait(2.0)


def test_the_services_that_ship_logs_stop_together_then_the_rest_in_reverse() -> None:
    # given a stack started as make run starts it
    stack = Devstack(DevstackConfig.from_env({}), {})
    log: list[str] = []
    pg, broker, logging_service, db_service, gateway = (
        Child(name, log) for name in ("pg", "broker", "logging", "db_service", "gateway")
    )
    gateway.waits_for, db_service.waits_for = db_service, gateway
    stack._stoppables = [pg, broker, logging_service, db_service, gateway]
    stack._shippers = [db_service, gateway]

    # when it stops with the default budget
    stack.stop()

    # then the gateway and db_service stop at the same time (each flushing its log may take
    # its whole grace), and only after both the logging service, the broker and PostgreSQL
    assert (gateway.saw_partner, db_service.saw_partner) == (True, True)
    assert set(log[:2]) == {"gateway", "db_service"}
    assert log[2:] == ["logging", "broker", "pg"]
    # and each shipper may take the budget less a second for each stage after it
    assert min(gateway.timeout, db_service.timeout) >= 6.5
