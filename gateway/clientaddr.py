"""The address of the client behind a request, for the per-client limits on logins and
registrations.

    client_address(scope, trusted=())                        # the TCP peer
    client_address(scope, trusted=(ip_network("10.0.0.0/8"),))

X-Forwarded-For is believed only as far as it was written by trusted proxies (TRUSTED_PROXIES):
starting from the TCP peer, each hop that is a trusted proxy hands over to the address it
says it received the request from (the next entry from the right), and the first address
that is not a trusted proxy is the client. Anyone can send the header; with no trusted
proxies (the default) it is ignored, so a client cannot pick itself a fresh address per
request. An entry that is not an IP address ends the walk at the hop that wrote it; a port
after one (`203.0.113.7:50123`, `[2001:db8::5]:50123`, as some proxies write them) is left out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_HEADER = b"x-forwarded-for"


def client_address(scope: Scope, trusted: Sequence[IPNetwork]) -> str:
    """The client's IP address as text; "" when the server does not know the peer."""
    peer = scope.get("client")
    host = peer[0] if peer else ""
    if not trusted:
        return host
    hop = _ip(host)
    if hop is None or not _is_trusted(hop, trusted):
        return host
    forwarded = [
        entry.strip()
        for name, value in scope.get("headers", ())
        if name == _HEADER
        for entry in value.decode("latin-1").split(",")
    ]
    for entry in reversed(forwarded):
        said = _ip(entry)
        if said is None:
            break
        hop = said
        if not _is_trusted(hop, trusted):
            break
    return str(hop)


def _is_trusted(ip: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(ip in network for network in trusted)


def _ip(text: str) -> IPAddress | None:
    if text.startswith("["):  # [IPv6] or [IPv6]:port
        text, _, port = text[1:].partition("]")
    elif text.count(":") == 1:  # IPv4:port; a bare IPv6 address has several colons
        text, _, port = text.partition(":")
        port = ":" + port
    else:
        port = ""
    if port and not (port[0] == ":" and port[1:].isascii() and port[1:].isdigit()):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
