"""A DNS server for tests, on loopback UDP: answers A queries for the names it was given.

    with DNSStub({"gateway": ["127.0.0.1", "127.0.0.2"]}) as dns:
        ...  # resolver 127.0.0.1:{dns.port}

Enough of RFC 1035 for a resolver such as nginx's: one question per query, A records with a
short TTL, NXDOMAIN for any other name, an empty answer for any other type.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from types import TracebackType

_A, _IN, _TTL_S = 1, 1, 1


class DNSStub:
    def __init__(self, names: dict[str, list[str]]) -> None:
        self._names = {name.lower().rstrip("."): addresses for name, addresses in names.items()}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-stub", daemon=True)

    def __enter__(self) -> DNSStub:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self._answer(query)
            if answer:
                self._sock.sendto(answer, peer)

    def _answer(self, query: bytes) -> bytes:
        if len(query) < 12:
            return b""
        (ident,) = struct.unpack_from("!H", query)
        labels, pos = [], 12
        while pos < len(query) and query[pos]:
            length = query[pos]
            labels.append(query[pos + 1 : pos + 1 + length].decode("ascii", "replace"))
            pos += 1 + length
        pos += 1
        if pos + 4 > len(query):
            return b""
        qtype, _ = struct.unpack_from("!HH", query, pos)
        question = query[12 : pos + 4]
        addresses = self._names.get(".".join(labels).lower())
        if addresses is None:
            return struct.pack("!HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        records = [
            struct.pack("!HHHIH", 0xC00C, _A, _IN, _TTL_S, 4)
            + ipaddress.IPv4Address(address).packed
            for address in (addresses if qtype == _A else [])
        ]
        header = struct.pack("!HHHHHH", ident, 0x8180, 1, len(records), 0, 0)
        return header + question + b"".join(records)
