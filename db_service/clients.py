"""Which client an RPC serves: the key of its per-client windows (login throttling, the limit on
logins and registrations per client).

    client_key("203.0.113.7", peer)           -> "203.0.113.7"
    client_key("2001:db8:1:2:3:4:5:6", peer)  -> "2001:db8:1:2::/64"
    client_key("", "ipv4:127.0.0.1:50312")    -> "127.0.0.1"  (a direct gRPC caller)
"""

from __future__ import annotations

import ipaddress

# The key column's width (migrations/004_client_windows.sql).
MAX_KEY = 64


def client_key(address: str, peer: str) -> str:
    """The client's key: the address the gateway sent if it is an IP address, else the gRPC
    peer's. An IPv6 client counts as its /64 network, which one subscriber usually holds
    whole: counting single addresses would hand each of them 2^64 fresh windows."""
    ip = _ip(address) or _ip(_peer_host(peer))
    if ip is None:
        return peer[:MAX_KEY]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _peer_host(peer: str) -> str:
    """The host of a gRPC peer string: "ipv4:1.2.3.4:5", "ipv6:[::1]:5" (others: "")."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.partition("]")[0].removeprefix("[")
    return ""
