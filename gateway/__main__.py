"""`python -m gateway`: serve the GraphQL and REST APIs with uvicorn."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import Settings


class GatewayServer(uvicorn.Server):
    """uvicorn, except that a SIGTERM/SIGINT that ends in a clean shutdown exits with 0.

    Stock uvicorn re-raises the signal after shutting down, so supervisors see a death by
    signal instead of the graceful stop that happened.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"gateway: invalid configuration: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="auto",
        http="auto",
        ws="websockets-sansio",
        lifespan="on",
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = GatewayServer(config)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
