"""Rules every service's settings share: the mode, the JWT secret, loopback-only development."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, SecretStr, StringConstraints, ValidationError

MerchEnv = Literal["development", "production"]
# Production is the default: a deployment that forgets MERCH_ENV must not run on the public
# development secret with GraphiQL and introspection on. `make run` and the tests say
# MERCH_ENV=development themselves.
DEFAULT_ENV: Literal["production"] = "production"
# Only ever accepted in development mode; production refuses to start with it. `make run`
# hands it to the services as JWT_SECRET; it is also what development mode falls back to.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"  # noqa: S105
PRODUCTION_REFUSAL = (
    "JWT_SECRET must be set to a secret of at least 32 bytes: production is the default mode "
    "(MERCH_ENV=development, for a local run only, has a built-in one)"
)

S = TypeVar("S")

# An address or DSN a service cannot work without. Empty (as `VAR: ${VAR:-}` in a compose file
# makes it when the shell lacks VAR) it is refused at start: gRPC, asyncpg and aiokafka would
# take it and fail every call later, or quietly dial a default of their own instead.
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _existing_directory(value: str | None) -> str | None:
    if value is not None and not os.path.isdir(value):
        raise ValueError(
            "must be an existing directory (a supervisor of workers sets it for them; leave it "
            "unset)"
        )
    return value


# PROMETHEUS_MULTIPROC_DIR: prometheus-client's own variable, which a deployment may set for
# every process; naming no directory, it failed only inside prometheus-client at start.
MetricsDirectory = Annotated[str | None, AfterValidator(_existing_directory)]


def is_loopback(address: str) -> bool:
    """Whether a `host` or `host:port` address (IPv6 in brackets) names only this machine."""
    host = address
    if address.startswith("["):
        host = address[1:].partition("]")[0]
    elif address.count(":") == 1:
        host = address.partition(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_public_development(
    merch_env: MerchEnv, variable: str, address: str, *, needs_jwt_secret: bool = True
) -> None:
    """Raise ValueError, in one line naming `variable`, when development mode would listen
    beyond this machine."""
    if merch_env == "development" and not is_loopback(address):
        production = (
            "production mode with a real JWT_SECRET" if needs_jwt_secret else "production mode"
        )
        raise ValueError(
            f"development mode (MERCH_ENV=development) binds only loopback addresses, "
            f"and {variable} is {address!r}; use 127.0.0.1, or {production}"
        )


def check_listen_address(variable: str, address: str) -> None:
    """Raise ValueError, in one line naming `variable`, unless `address` is `host:port` (IPv6
    in brackets) with a TCP port of 0 to 65535.

    gRPC binds a larger port modulo 65536 (`:70000` listens on 4464), and fails on a missing
    host or port only with a traceback from deep inside the server's start."""
    parts = host_and_port(address)
    if parts is None or not parts[0] or not _is_port(parts[1], lowest=0):
        raise ValueError(
            f"{variable} must be host:port with a port of 0 to 65535 "
            f"(e.g. 127.0.0.1:50051), not {address!r}"
        )


def host_and_port(address: str) -> tuple[str, str] | None:
    """`host:port` (IPv6 in brackets) split in two, or None without a colon."""
    host, colon, port = address.rpartition(":")
    if not colon:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def _is_port(port: str, *, lowest: int) -> bool:
    return port.isascii() and port.isdigit() and lowest <= int(port) <= 65535


def check_target(variable: str, target: str) -> None:
    """Raise ValueError, in one line naming `variable`, unless the gRPC target `target` names
    a port of 1 to 65535 for each of its addresses.

    gRPC dials port 443 for an address without one (`db-service`, `dns:///db-service`) and a
    larger port modulo 65536: a typo would quietly call another port for ever. Unix sockets
    (`unix:`, `unix-abstract:`, `vsock:`) have no port and pass as written."""
    if target.startswith(("unix:", "unix-abstract:", "vsock:")):
        return
    if target.startswith(("ipv4:", "ipv6:")):
        addresses = target.partition(":")[2].split(",")
    elif target.startswith("dns:"):
        name = target.removeprefix("dns:")
        # dns:///name:port, or dns://<resolver>/name:port
        addresses = [name[2:].partition("/")[2] if name.startswith("//") else name]
    else:
        addresses = [target]
    for address in addresses:
        parts = host_and_port(address)
        if parts is None or not parts[0] or not _is_port(parts[1], lowest=1):
            raise ValueError(
                f"{variable} must name a host and a port of 1 to 65535 "
                f"(e.g. 127.0.0.1:50051 or dns:///db-service:50051), not {target!r}"
            )


def check_durability(durability: str, spool_dir: str, *, shipping: bool) -> None:
    """Raise ValueError when LOG_DURABILITY=sync has no spool to put the records on disk in.

    The shipper would keep them in memory and answer at once, as `batch` without a disk does:
    the durability asked for quietly gone, and a crash losing records of answered requests."""
    if shipping and durability == "sync" and not spool_dir:
        raise ValueError(
            "LOG_DURABILITY=sync needs a LOG_SPOOL_DIR to write log records to before answering; "
            "with an empty one they are kept in memory only"
        )


def check_jwt_secret(secret: SecretStr, merch_env: MerchEnv) -> None:
    """Raise ValueError for a secret too short to sign with, or development's in production."""
    value = secret.get_secret_value()
    if len(value.encode()) < 32:
        raise ValueError("JWT_SECRET must be at least 32 bytes")
    if merch_env == "production" and value == DEV_JWT_SECRET:
        raise ValueError(PRODUCTION_REFUSAL)


def read_settings(settings_class: Callable[[], S], service: str) -> S | None:
    """The service's settings from the environment, or None after one line on stderr saying why."""
    try:
        return settings_class()
    except ValidationError as exc:
        # Messages only: pydantic's own text repeats the values given, secrets among them.
        # A field is named as its environment variable, the name the operator set and searches.
        reasons = "; ".join(
            ".".join(map(str, e["loc"])).upper() + ": " + _reason(e["msg"])
            if e["loc"]
            else _reason(e["msg"])
            for e in exc.errors(include_input=False, include_url=False)
        )
        print(f"{service}: invalid configuration: {reasons}", file=sys.stderr)
        return None


def _reason(message: str) -> str:
    # Our validators' ValueErrors come with pydantic's prefix, which tells an operator nothing.
    return message.removeprefix("Value error, ")
