"""Which address the gateway takes for the client: X-Forwarded-For only through trusted proxies."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from gateway.clientaddr import IPNetwork, client_address

PROXIES: tuple[IPNetwork, ...] = (ip_network("10.0.0.0/8"), ip_network("::1/128"))

# (case, TCP peer, X-Forwarded-For headers, trusted proxies, the client)
CASES: list[tuple[str, str, list[str], tuple[IPNetwork, ...], str]] = [
    ("no trusted proxies: the header is ignored", "198.51.100.9", ["203.0.113.7"], (),
     "198.51.100.9"),
    ("an untrusted peer's header is ignored", "198.51.100.9", ["203.0.113.7"], PROXIES,
     "198.51.100.9"),
    ("a trusted proxy names the client", "10.1.2.3", ["203.0.113.7"], PROXIES, "203.0.113.7"),
    ("a spoofed entry left of the client is ignored", "10.1.2.3", ["1.1.1.1, 203.0.113.7"],
     PROXIES, "203.0.113.7"),
    ("a chain of trusted proxies is walked", "10.1.2.3", ["203.0.113.7, 10.9.9.9"], PROXIES,
     "203.0.113.7"),
    ("several headers read as one list", "10.1.2.3", ["203.0.113.7", "10.9.9.9"], PROXIES,
     "203.0.113.7"),
    ("garbage stops at the proxy that wrote it", "10.1.2.3", ["203.0.113.7, not-an-ip"],
     PROXIES, "10.1.2.3"),
    ("an empty header leaves the proxy", "10.1.2.3", [""], PROXIES, "10.1.2.3"),
    ("only proxies: the leftmost", "10.1.2.3", ["10.4.4.4, 10.9.9.9"], PROXIES, "10.4.4.4"),
    ("IPv6 in brackets", "::1", ["[2001:db8::5]"], PROXIES, "2001:db8::5"),
    # Some proxies (Azure's Application Gateway, for one) write the client's port too.
    ("IPv4 with a port", "10.1.2.3", ["203.0.113.7:50123"], PROXIES, "203.0.113.7"),
    ("IPv6 in brackets with a port", "10.1.2.3", ["[2001:db8::5]:50123"], PROXIES,
     "2001:db8::5"),
    ("a proxy with a port walked past", "10.1.2.3", ["203.0.113.7, 10.9.9.9:443"], PROXIES,
     "203.0.113.7"),
    ("a bare IPv6 address is no address and port", "::1", ["2001:db8::5"], PROXIES,
     "2001:db8::5"),
    ("a port that is not a number stops the walk", "10.1.2.3", ["203.0.113.7:http"], PROXIES,
     "10.1.2.3"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "peer", "forwarded", "trusted", "client"), CASES, ids=[c[0] for c in CASES]
)
def test_the_client_is_the_first_address_no_trusted_proxy_vouches_past(
    case: str, peer: str, forwarded: list[str], trusted: tuple[IPNetwork, ...], client: str
) -> None:
    # given a request from `peer` with these X-Forwarded-For headers
    scope = {
        "type": "http",
        "client": (peer, 50000),
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }

    # when the gateway tells who the client is; then it believes trusted proxies only
    assert client_address(scope, trusted) == client


def test_no_peer_is_no_address() -> None:
    assert client_address({"type": "http", "headers": []}, PROXIES) == ""
