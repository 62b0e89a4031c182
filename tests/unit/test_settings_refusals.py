"""Bad configuration is refused at start, in one line naming the variable.

Not a traceback from gRPC, asyncpg or aiokafka later on, and not a value the service quietly
replaces with another: each service reads its settings before it opens anything, so these run
the real `python -m <service>` and need no PostgreSQL, broker or peer.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-real-production-secret-0123456789-abcdef"


def _start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", module],
            env={"PATH": "/usr/bin:/bin", "JWT_SECRET": SECRET, "LOG_SPOOL_DIR": "", **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{module} accepted {env} and went on starting")


def _assert_refused(result: subprocess.CompletedProcess[str], variable: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert "invalid configuration" in line
    assert variable in line
    # pydantic's wording, which says nothing to an operator
    assert "Value error" not in line


@pytest.mark.parametrize(
    ("module", "variable", "value"),
    [
        ("gateway", "LOG_SPOOL_SYNC_MS", "0"),
        ("gateway", "GATEWAY_WORKERS", "-1"),
        ("gateway", "GRAPHIQL", "maybe"),
        ("gateway", "REQUEST_MAX_BYTES", ""),
        # a gRPC deadline that far off overflows, and every `logs` subscription ended at once
        ("gateway", "LOG_TAIL_MAX_S", "1e10"),
        ("gateway", "LOG_TAIL_MAX_S", "inf"),
        ("db_service", "DB_POOL_MAX", "ten"),
        ("db_service", "LOG_SPOOL_SYNC_MS", "0"),
        ("logging_service", "KAFKA_TOPIC_PARTITIONS", "1.5"),
        ("logging_service", "KAFKA_IDEMPOTENCE", "yes"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_as_it_is_set(
    module: str, variable: str, value: str
) -> None:
    # given a value out of range, of the wrong type or empty; when the service starts
    result = _start(module, {variable: value, "GATEWAY_PORT": "0"})

    # then its one line names the environment variable as the operator wrote it, so that a
    # search of the deployment's configuration finds it
    _assert_refused(result, variable)


@pytest.mark.parametrize(
    ("module", "variable"),
    [("db_service", "DB_SERVICE_LISTEN"), ("logging_service", "LOGGING_SERVICE_LISTEN")],
)
@pytest.mark.parametrize(
    "address",
    [
        # gRPC would bind these ports modulo 65536 (70000 -> 4464), not refuse them
        "127.0.0.1:70000",
        "0.0.0.0:99999",
        # and fail on these only deep inside the server's start, with a traceback
        "127.0.0.1",
        "127.0.0.1:",
        ":50051",
        "127.0.0.1:5oo51",
        "",
    ],
)
def test_a_listen_address_grpc_would_not_bind_as_written_is_refused(
    module: str, variable: str, address: str
) -> None:
    # given production mode (where any host may be bound) and a listen address that is not
    # host:port with a TCP port; when the service starts
    result = _start(module, {variable: address})

    # then it refuses in one line naming the variable, before binding anything
    _assert_refused(result, variable)


@pytest.mark.parametrize(
    ("module", "variable"),
    [
        # every request answered 500: gRPC cannot make a channel to ''
        ("gateway", "DB_SERVICE_ADDR"),
        # every record waits in the spool for a channel that can never be made
        ("gateway", "LOGGING_SERVICE_ADDR"),
        # asyncio binds every interface for an empty host, not the default 127.0.0.1
        ("gateway", "GATEWAY_HOST"),
        # asyncpg falls back to libpq's defaults (localhost:5432 as the OS user) and retries
        ("db_service", "DATABASE_URL"),
        ("db_service", "LOGGING_SERVICE_ADDR"),
        # aiokafka dials ('', 9092) for ever, "not ready"
        ("logging_service", "KAFKA_BOOTSTRAP_SERVERS"),
        ("logging_service", "LOGGING_SERVICE_ADDR"),
        # tokens issued and required with `iss: ""`
        ("gateway", "JWT_ISSUER"),
        ("db_service", "JWT_ISSUER"),
    ],
)
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_required_value_is_refused(module: str, variable: str, value: str) -> None:
    # given an address or a name a service cannot work without set to nothing, as
    # `VAR: ${VAR:-}` in a compose file does when the shell lacks it; when the service starts
    # in production
    result = _start(module, {variable: value, "GATEWAY_PORT": "0"})

    # then it refuses in one line naming the variable, rather than start and fail every call
    _assert_refused(result, variable)


@pytest.mark.parametrize("topic", ["log channel", "log/channel", "lög-channel", ".", ".."])
def test_a_topic_name_kafka_would_refuse_is_refused(topic: str) -> None:
    # given a KAFKA_TOPIC outside Kafka's rule (1 to 249 of a-z A-Z 0-9 . _ -, not . or ..),
    # which a real broker answers only with an error code to CreateTopics, so that the
    # service would retry "Kafka not ready" for ever; when logging_service starts
    result = _start("logging_service", {"KAFKA_TOPIC": topic})

    # then it refuses in one line naming the variable
    _assert_refused(result, "KAFKA_TOPIC")


def test_kafka_topic_names_of_every_allowed_character_are_taken() -> None:
    from logging_service.settings import Settings

    assert Settings(kafka_topic="log-channel_v2.prod").kafka_topic == "log-channel_v2.prod"


@pytest.mark.parametrize(
    "servers", ["127.0.0.1:abc", "127.0.0.1:99999", "http://kafka:9092", "kafka:9092,:9093"]
)
def test_bootstrap_servers_that_are_not_host_port_are_refused(servers: str) -> None:
    # given a KAFKA_BOOTSTRAP_SERVERS entry aiokafka could never connect to, which it would
    # only report as "Kafka not ready" on every retry; when logging_service starts
    result = _start("logging_service", {"KAFKA_BOOTSTRAP_SERVERS": servers})

    # then it refuses in one line naming the variable
    _assert_refused(result, "KAFKA_BOOTSTRAP_SERVERS")


def test_bootstrap_servers_of_several_brokers_are_taken() -> None:
    from logging_service.settings import Settings

    servers = "kafka-1:9092, kafka-2:9092,[::1]:9092,localhost"
    assert Settings(kafka_bootstrap_servers=servers).kafka_bootstrap_servers == servers


@pytest.mark.parametrize(
    ("module", "variable"),
    [
        ("gateway", "DB_SERVICE_ADDR"),
        ("gateway", "LOGGING_SERVICE_ADDR"),
        ("db_service", "LOGGING_SERVICE_ADDR"),
    ],
)
# gRPC dials port 443 for a target without one, and a port over 65535 modulo 65536
@pytest.mark.parametrize("target", ["db-service", "dns:///db-service", "127.0.0.1:70000"])
def test_a_grpc_target_without_a_usable_port_is_refused(
    module: str, variable: str, target: str
) -> None:
    # given a peer's address gRPC would quietly dial another port of; when the service starts
    result = _start(module, {variable: target, "GATEWAY_PORT": "0"})

    # then it refuses in one line naming the variable
    _assert_refused(result, variable)


@pytest.mark.parametrize(
    "target",
    [
        "127.0.0.1:50051",
        "localhost:50051",
        "[::1]:50051",
        "db-service:50051",
        "dns:///db-service:50051",
        "dns://10.0.0.2/db-service:50051",
        "ipv4:10.0.0.1:50051,10.0.0.2:50051",
        "unix:/run/merch/db.sock",
    ],
)
def test_grpc_targets_in_every_form_gateways_use_are_taken(target: str) -> None:
    from gateway.settings import Settings

    assert Settings(jwt_secret=SECRET, db_service_addr=target).db_service_addr == target


@pytest.mark.parametrize("module", ["gateway", "db_service"])
@pytest.mark.parametrize("directory", ["", "/nonexistent/merch-metrics"])
def test_a_metrics_directory_that_is_not_one_is_refused(module: str, directory: str) -> None:
    # given PROMETHEUS_MULTIPROC_DIR (prometheus-client's own variable, which a deployment
    # template may set for every process) naming no directory; when the service starts
    result = _start(module, {"PROMETHEUS_MULTIPROC_DIR": directory, "GATEWAY_PORT": "0"})

    # then it refuses in one line naming the variable, not prometheus-client's traceback
    _assert_refused(result, "PROMETHEUS_MULTIPROC_DIR")


@pytest.mark.parametrize("module", ["gateway", "db_service"])
def test_sync_durability_without_a_spool_is_refused(module: str) -> None:
    # given LOG_DURABILITY=sync, which answers a request only once its log records are on disk,
    # and no spool to write them to (an empty LOG_SPOOL_DIR keeps records in memory only)
    env = {"LOG_DURABILITY": "sync", "LOG_SPOOL_DIR": "", "GATEWAY_PORT": "0"}

    # when the service starts
    result = _start(module, env)

    # then it refuses, naming both, rather than run with the durability it was asked for
    # quietly gone: a crash would lose the records of requests it had answered
    _assert_refused(result, "LOG_DURABILITY")
    assert "LOG_SPOOL_DIR" in result.stderr


def test_sync_durability_without_a_spool_is_taken_when_nothing_is_recorded() -> None:
    from db_service.settings import Settings

    # given LOG_SHIPPING=false (no record at all, outbox included) beside the same pair; when the
    # settings are read, then there is nothing to refuse: no record would wait for a disk
    settings = Settings(
        jwt_secret=SECRET, log_shipping=False, log_durability="sync", log_spool_dir=""
    )
    assert settings.log_durability == "sync"


@pytest.mark.parametrize(
    ("time_cost", "memory_kib"), [("1", "65536"), ("3", "19455"), ("1", "256")]
)
def test_a_password_hash_cost_below_owasps_floor_is_refused_in_production(
    time_cost: str, memory_kib: str
) -> None:
    # given production (the default) and an Argon2 cost below 2 passes or 19 MiB
    env = {"PASSWORD_HASH_TIME_COST": time_cost, "PASSWORD_HASH_MEMORY_KIB": memory_kib}

    # when db_service starts
    result = _start("db_service", env)

    # then it refuses, naming both: passwords that cheap are cheap to guess from a stolen table
    _assert_refused(result, "PASSWORD_HASH_TIME_COST")
    assert "PASSWORD_HASH_MEMORY_KIB" in result.stderr


def test_a_cheap_password_hash_is_taken_in_development_and_the_default_is_rfc_9106s() -> None:
    from db_service.passwords import argon2id
    from db_service.settings import Settings

    # given the defaults, and development asking for the test suite's cost
    default = Settings(jwt_secret=SECRET)
    cheap = Settings(
        merch_env="development", password_hash_time_cost=1, password_hash_memory_kib=256
    )

    # when each hashes a password
    hashes = [
        argon2id(time_cost=s.password_hash_time_cost, memory_kib=s.password_hash_memory_kib).hash(
            "a password"
        )
        for s in (default, cheap)
    ]

    # then each hash carries its cost: RFC 9106's low-memory profile by default
    assert hashes[0].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert hashes[1].startswith("$argon2id$v=19$m=256,t=1,p=4$")


def _schema(module: str) -> dict[str, Any]:
    settings = importlib.import_module(f"{module}.settings").Settings
    properties: dict[str, Any] = settings.model_json_schema()["properties"]
    return properties


@pytest.mark.parametrize("module", ["gateway", "db_service", "logging_service"])
def test_every_duration_a_service_is_configured_with_has_an_upper_bound(module: str) -> None:
    # given every setting of the service that is a duration (named *_s or *_ms)
    durations = {
        name: field for name, field in _schema(module).items() if name.endswith(("_s", "_ms"))
    }

    # then each has an upper bound: SHUTDOWN_GRACE_S=inf made a stop wait forever on a stuck
    # call, and a rate window of 2**31 s made every login and order fail (below)
    unbounded = [
        name.upper()
        for name, field in durations.items()
        if "maximum" not in field and "exclusiveMaximum" not in field
    ]
    assert durations
    assert unbounded == []


def test_a_rate_window_fits_the_integer_postgresql_reports_its_retry_after_in() -> None:
    # given the rate windows, whose seconds until the end PostgreSQL computes as an int
    # (db_service.repositories.windows): 2**31 s overflowed it on every counted attempt
    schema = _schema("db_service")

    # then none may be that long
    for name in ("login_window_s", "client_auth_window_s", "order_rate_window_s"):
        assert schema[name]["maximum"] < 2**31, name
