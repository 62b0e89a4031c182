"""compose.yaml, the Dockerfile and the README's "Deploy with Docker" section agree with each
other and with each service's settings. There is no Docker engine here, so the files are read,
the settings classes are built from the compose environment, and the healthcheck one-liners are
run against stand-in servers."""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import ipaddress
import itertools
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pydantic_settings import BaseSettings

from db_service.settings import Settings as DBSettings
from gateway.settings import Settings as GatewaySettings
from logging_service.settings import Settings as LoggingSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
DOCKERIGNORE = (ROOT / ".dockerignore").read_text(encoding="utf-8")

# compose service → the settings class its program reads, and the module it runs
APPS: dict[str, tuple[type[BaseSettings], str]] = {
    "gateway": (GatewaySettings, "gateway"),
    "db-service": (DBSettings, "db_service"),
    "logging-service": (LoggingSettings, "logging_service"),
}
# Read by a library rather than by our settings: asyncpg takes the password from PGPASSWORD.
LIBRARY_VARIABLES = {"PGPASSWORD"}
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN")
TEST_ENV = {"JWT_SECRET": "x" * 40, "POSTGRES_PASSWORD": "pg-password"}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[?-])(?P<arg>[^}]*))?\}")


# --- reading compose.yaml ----------------------------------------------------------------------


def interpolate(value: Any, env: dict[str, str]) -> str:
    """compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` substitution of one value."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        if op in (":?", "?") and not current:
            raise LookupError(f"{name}: {arg}")
        if op in (":-", "-") and not current:
            return str(arg)
        return current or ""

    return INTERPOLATION.sub(substitute, str(value))


def environment(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    raw = SERVICES[service].get("environment", {})
    assert isinstance(raw, dict), f"{service}: write environment as a mapping"
    return {key: interpolate(value, TEST_ENV if env is None else env) for key, value in raw.items()}


def settings_for(service: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's settings object, built from exactly its compose environment."""
    settings_class, _ = APPS[service]
    for name in settings_class.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for key, value in environment(service).items():
        monkeypatch.setenv(key, value)
    return settings_class()


def host_port(address: str) -> tuple[str, int]:
    """`host:port`, also as a gRPC target that resolves every address (`dns:///host:port`)."""
    host, _, port = address.removeprefix("dns:///").rpartition(":")
    return host, int(port)


def depends_on(service: str) -> dict[str, str]:
    raw = SERVICES[service].get("depends_on", {})
    assert isinstance(raw, dict), f"{service}: use the long depends_on form with a condition"
    return {name: spec["condition"] for name, spec in raw.items()}


def one_shot(service: str) -> bool:
    return SERVICES[service].get("restart") == "no"


def published(service: str) -> dict[int, int]:
    """container port → host port of the service's published ports."""
    mapping = {}
    for entry in SERVICES[service].get("ports", []):
        *_, host, container = str(entry).split(":")
        mapping[int(container)] = int(host)
    return mapping


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """Kafka's `NAME://host:port,...` as {NAME: (host, port)}."""
    found = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        found[name] = host_port(address)
    return found


KAFKA_ENV = environment("kafka")


def internal_kafka_address() -> tuple[str, int]:
    return listeners(KAFKA_ENV["KAFKA_ADVERTISED_LISTENERS"])[
        KAFKA_ENV["KAFKA_INTER_BROKER_LISTENER_NAME"]
    ]


# --- the services' settings --------------------------------------------------------------------


@pytest.mark.parametrize("service", APPS)
def test_each_service_starts_in_production_with_its_compose_environment(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given exactly the compose environment (secrets from the shell)
    settings = settings_for(service, monkeypatch)

    # then the settings validate (a dev secret or a short one would be refused) in production mode
    assert settings.merch_env == "production"


@pytest.mark.parametrize("service", APPS)
def test_every_variable_names_a_setting(service: str) -> None:
    settings_class, _ = APPS[service]
    known = {name.upper() for name in settings_class.model_fields} | LIBRARY_VARIABLES

    assert set(environment(service)) - known == set(), "a typo, or a setting that was removed"


@pytest.mark.parametrize("service", APPS)
def test_every_development_default_is_overridden(service: str) -> None:
    # given the settings whose defaults only make sense on a developer's machine
    settings_class, _ = APPS[service]
    local = {
        name.upper()
        for name, field in settings_class.model_fields.items()
        if "127.0.0.1" in str(field.default) or name == "jwt_secret"
    }

    # then compose sets each of them, and none to a loopback address
    env = environment(service)
    assert local <= set(env), f"not set: {sorted(local - set(env))}"
    assert [k for k in local if "127.0.0.1" in env[k] or "localhost" in env[k]] == []


@pytest.mark.parametrize("service", APPS)
def test_servers_listen_on_every_interface(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(service, monkeypatch)
    host = (
        settings.gateway_host
        if service == "gateway"
        else host_port(getattr(settings, f"{APPS[service][1]}_listen"))[0]
    )

    # 127.0.0.1 inside a container is unreachable from the others
    assert host in ("0.0.0.0", "[::]")


def _listen_port(service: str, monkeypatch: pytest.MonkeyPatch) -> int:
    settings = settings_for(service, monkeypatch)
    if service == "gateway":
        return int(settings.gateway_port)
    return host_port(getattr(settings, f"{APPS[service][1]}_listen"))[1]


ADDRESSES = [
    ("gateway", "db_service_addr", "db-service"),
    ("gateway", "logging_service_addr", "logging-service"),
    ("db-service", "logging_service_addr", "logging-service"),
    ("logging-service", "logging_service_addr", "logging-service"),
]


@pytest.mark.parametrize(("client", "setting", "server"), ADDRESSES)
def test_clients_dial_servers_by_service_name_and_listen_port(
    client: str, setting: str, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = host_port(getattr(settings_for(client, monkeypatch), setting))

    assert target == (server, _listen_port(server, monkeypatch))


def test_db_service_reaches_postgres_as_its_user_and_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = urlsplit(settings_for("db-service", monkeypatch).database_url)
    postgres = environment("postgres")

    assert (url.hostname, url.port) == ("postgres", 5432)
    assert url.username == postgres["POSTGRES_USER"]
    assert url.path == "/" + postgres["POSTGRES_DB"]
    # the password travels separately, and it is postgres's own
    assert url.password is None
    assert (
        SERVICES["db-service"]["environment"]["PGPASSWORD"]
        == (SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"])
    )


def test_logging_service_reaches_kafka_on_its_internal_listener(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrap = settings_for("logging-service", monkeypatch).kafka_bootstrap_servers

    assert host_port(bootstrap) == internal_kafka_address() == ("kafka", 9092)


def test_the_load_balancer_is_published_on_the_gateway_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = _listen_port("gateway", monkeypatch)

    assert published("lb") == {port: 8081}


# --- scaling out (README "Scaling out") ---------------------------------------------------------

LB_CONFIG: str = COMPOSE["configs"]["lb-config"]["content"]


@pytest.mark.parametrize("service", ["gateway", "db-service"])
def test_scaled_services_claim_no_host_port_or_container_name(service: str) -> None:
    # `docker compose up --scale` refuses a fixed host port or name shared by replicas
    assert published(service) == {}
    assert "container_name" not in SERVICES[service]


def test_the_load_balancer_sends_requests_to_every_gateway_replica(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given nginx's configuration, as compose writes it ($$ is a literal $)
    config = LB_CONFIG.replace("$$", "$")
    port = _listen_port("gateway", monkeypatch)
    mount = SERVICES["lb"]["configs"][0]

    # then it asks Docker's DNS again and again (new replicas) and proxies to the gateway's port
    assert mount == {"source": "lb-config", "target": "/etc/nginx/conf.d/default.conf"}
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", config, re.M)
    assert f"listen {port};" in config
    assert f"set $gateway http://gateway:{port};" in config
    assert "proxy_pass $gateway;" in config


def test_the_load_balancer_passes_websocket_upgrades() -> None:
    config = LB_CONFIG.replace("$$", "$")

    assert "proxy_http_version 1.1;" in config
    assert "proxy_set_header Upgrade $http_upgrade;" in config
    assert "proxy_set_header Connection $connection_upgrade;" in config


def test_the_load_balancer_names_the_client_in_x_forwarded_for_and_drops_what_it_sent() -> None:
    config = LB_CONFIG.replace("$$", "$")

    assert "proxy_set_header X-Forwarded-For $remote_addr;" in config


@pytest.mark.parametrize("subnet", [None, "10.77.0.0/16"])
def test_behind_the_load_balancer_each_client_counts_as_itself(
    subnet: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.clientaddr import client_address

    # given the network compose makes (its default subnet, or the one the shell sets)
    env = {**TEST_ENV, **({"MERCH_SUBNET": subnet} if subnet else {})}
    (config,) = COMPOSE["networks"]["merch"]["ipam"]["config"]
    network = ipaddress.ip_network(interpolate(config["subnet"], env))
    for name, value in environment("gateway", env).items():
        monkeypatch.setenv(name, value)
    trusted = GatewaySettings().trusted_proxies
    balancer = str(network.network_address + 2)

    def seen(peer: str, forwarded: str) -> str:
        headers = [(b"x-forwarded-for", forwarded.encode())]
        return client_address({"client": (peer, 40000), "headers": headers}, trusted)

    # then a request through the balancer counts as the client's, each client as its own
    assert seen(balancer, "203.0.113.7") == "203.0.113.7"
    assert seen(balancer, "198.51.100.9") == "198.51.100.9"
    # and one from outside that network cannot pick its own address with the header
    assert seen("192.0.2.1", "203.0.113.7") == "192.0.2.1"


def test_the_gateway_balances_its_grpc_calls_over_db_service_replicas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.backends import SERVICE_CONFIG

    # given a target that resolves every db-service replica's address
    target = settings_for("gateway", monkeypatch).db_service_addr

    # then the channel's policy calls them in turn
    assert target.startswith("dns:///")
    assert yaml.safe_load(SERVICE_CONFIG)["loadBalancingConfig"] == [{"round_robin": {}}]


@pytest.mark.parametrize(
    ("service", "variable"), [("gateway", "GATEWAY_WORKERS"), ("db-service", "DB_SERVICE_WORKERS")]
)
def test_workers_per_replica_come_from_the_shell_with_one_by_default(
    service: str, variable: str
) -> None:
    assert environment(service, TEST_ENV)[variable] == "1"
    assert environment(service, {**TEST_ENV, variable: "auto"})[variable] == "auto"


# --- Kafka ------------------------------------------------------------------------------------


def test_kafka_runs_in_kraft_mode_with_one_node() -> None:
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert set(KAFKA_ENV["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    # the cluster id is a base64url UUID, or the storage format step refuses it
    cluster_id = KAFKA_ENV["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    node, _, voter = KAFKA_ENV["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert node == str(KAFKA_ENV["KAFKA_NODE_ID"])
    controller = KAFKA_ENV["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert host_port(voter) == ("kafka", listeners(KAFKA_ENV["KAFKA_LISTENERS"])[controller][1])


def test_kafka_advertises_an_inside_and_an_outside_listener() -> None:
    # given the listeners it binds and the ones it advertises
    bound = listeners(KAFKA_ENV["KAFKA_LISTENERS"])
    advertised = listeners(KAFKA_ENV["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        p.split(":") for p in KAFKA_ENV["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )

    # then every listener has a protocol, and each advertised one is bound on the same port
    assert set(bound) == set(protocols)
    for name, (_, port) in advertised.items():
        assert bound[name][1] == port
    # inside: the service name; outside: localhost on a published port
    inside = KAFKA_ENV["KAFKA_INTER_BROKER_LISTENER_NAME"]
    (outside,) = set(advertised) - {inside}
    assert advertised[inside][0] == "kafka"
    assert advertised[outside][0] == "localhost"
    assert published("kafka") == {advertised[outside][1]: advertised[outside][1]}
    # the controller listener is for the quorum only: nobody is told to connect to it
    assert KAFKA_ENV["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised


def test_the_topic_creator_makes_the_topic_logging_service_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the one-shot topic creator's command line
    command = SERVICES["kafka-init"]["command"]
    options = dict(itertools.pairwise(command))
    settings = settings_for("logging-service", monkeypatch)

    # then it creates the very topic, idempotently, through the inside listener
    assert command[0].endswith("kafka-topics.sh")
    assert "--create" in command
    assert "--if-not-exists" in command
    assert options["--topic"] == settings.kafka_topic == "log-channel"
    assert int(options["--partitions"]) == settings.kafka_topic_partitions
    assert int(options["--replication-factor"]) == settings.kafka_topic_replication
    assert host_port(options["--bootstrap-server"]) == internal_kafka_address()
    assert one_shot("kafka-init")


# --- healthchecks, start order, network, volumes, secrets --------------------------------------


@pytest.mark.parametrize("service", [s for s in SERVICES if not one_shot(s)])
def test_every_long_running_service_has_a_healthcheck(service: str) -> None:
    test = SERVICES[service]["healthcheck"]["test"]

    assert test[0] in ("CMD", "CMD-SHELL")
    assert len(test) > 1


@pytest.mark.parametrize("service", APPS)
def test_service_healthchecks_use_python_on_their_own_port(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = SERVICES[service]["healthcheck"]["test"]

    # the slim image has no curl
    assert test[:3] == ["CMD", "python", "-c"]
    assert f"127.0.0.1:{_listen_port(service, monkeypatch)}" in test[3]


@pytest.mark.parametrize(
    ("service", "field"),
    [("db-service", "db_metrics_port"), ("logging-service", "logging_metrics_port")],
)
def test_each_backend_serves_its_metrics_on_a_port_it_exposes(
    service: str, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the backend's settings, built from its compose environment
    port = getattr(settings_for(service, monkeypatch), field)

    # then its Prometheus endpoint is on (0 is off) and open to the network, as the gateway's
    # /metrics is on its own port: a deployment is watched the same way whatever the service
    assert port != 0, f"{service} serves no metrics"
    assert str(port) in SERVICES[service].get("expose", [])
    assert re.search(rf"^EXPOSE .*\b{port}\b", DOCKERFILE, re.MULTILINE)


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_wait_for_health_or_completion(service: str) -> None:
    for dependency, condition in depends_on(service).items():
        assert dependency in SERVICES
        if one_shot(dependency):
            assert condition == "service_completed_successfully"
        else:
            assert condition == "service_healthy"
            assert "healthcheck" in SERVICES[dependency]


# What each service needs up before it starts (DESIGN.md §1's arrows, plus the topic).
START_ORDER = {
    "lb": {"gateway"},
    "gateway": {"db-service", "logging-service"},
    "db-service": {"postgres", "logging-service"},
    "logging-service": {"kafka", "kafka-init"},
    "kafka-init": {"kafka"},
}


@pytest.mark.parametrize(("service", "needs"), START_ORDER.items())
def test_each_service_starts_after_what_it_needs(service: str, needs: set[str]) -> None:
    assert set(depends_on(service)) == needs


def test_one_shot_services_are_awaited_by_a_long_running_one() -> None:
    # `docker compose up --wait` fails on a one-shot container that nothing waits for
    for name in filter(one_shot, SERVICES):
        waiting = [
            s for s in SERVICES if depends_on(s).get(name) == "service_completed_successfully"
        ]
        assert [s for s in waiting if not one_shot(s)], name


def test_all_services_share_one_named_network() -> None:
    (network,) = COMPOSE["networks"]
    for name, service in SERVICES.items():
        assert service.get("networks") == [network], name


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("postgres", "/var/lib/postgresql/data"),
        ("kafka", "/var/lib/kafka/data"),
        ("db-service", "/var/lib/merch/spool"),
        ("gateway", "/var/lib/merch/spool"),
    ],
)
def test_data_lives_in_named_volumes(service: str, path: str) -> None:
    mounts = dict(str(v).rsplit(":", 1)[::-1] for v in SERVICES[service]["volumes"])

    assert mounts[path] in COMPOSE["volumes"]


@pytest.mark.parametrize("service", ["db-service", "gateway"])
def test_each_log_spool_is_its_own_volume_at_the_configured_directory(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the service's settings and its mounts
    settings = settings_for(service, monkeypatch)
    mounts = dict(str(v).rsplit(":", 1)[::-1] for v in SERVICES[service]["volumes"])
    others = [
        str(v).split(":", 1)[0]
        for name, spec in SERVICES.items()
        if name != service
        for v in spec.get("volumes", [])
    ]

    # then the spool directory is a named volume that no other service mounts, and the image
    # creates it for the unprivileged user (a fresh volume copies that ownership)
    assert mounts[settings.log_spool_dir] in COMPOSE["volumes"]
    assert mounts[settings.log_spool_dir] not in others
    assert f"--owner=merch --group=merch {settings.log_spool_dir}" in DOCKERFILE


def test_postgres_is_version_17() -> None:
    assert SERVICES["postgres"]["image"] == "postgres:17"


def test_secrets_have_no_defaults() -> None:
    # given every ${...} in the file
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    references = list(INTERPOLATION.finditer(text))
    assert any(m["name"] == "JWT_SECRET" for m in references)

    for match in references:
        if any(word in match["name"] for word in SECRET_WORDS):
            # then a secret is either required (`:?`) or, for the optional admin, empty
            assert match["op"] == ":?" or (match["op"] == ":-" and match["arg"] == ""), match[0]
    # and the required ones really stop compose when missing
    with pytest.raises(LookupError, match="JWT_SECRET"):
        environment("gateway", env={"POSTGRES_PASSWORD": "x"})


def test_jwt_secret_is_the_same_for_issuer_and_checker() -> None:
    assert (
        SERVICES["gateway"]["environment"]["JWT_SECRET"]
        == SERVICES["db-service"]["environment"]["JWT_SECRET"]
    )


@pytest.mark.parametrize("service", APPS)
def test_services_run_the_image_built_here(service: str) -> None:
    _, module = APPS[service]
    spec = SERVICES[service]

    assert spec["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert spec["command"] == ["python", "-m", module]
    assert len({SERVICES[s]["image"] for s in APPS}) == 1


# --- the healthcheck one-liners, run against stand-in servers ----------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_healthcheck(service: str, port: int, env: dict[str, str] | None = None) -> int:
    code = SERVICES[service]["healthcheck"]["test"][3]
    original = re.search(r"127\.0\.0\.1:(\d+)", code)
    assert original
    code = code.replace(original[0], f"127.0.0.1:{port}")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=30,
        env=None if env is None else {**os.environ, **env},
    )
    return result.returncode


def _proxy_environment() -> dict[str, str]:
    """What Docker puts in every container when its client's config names a proxy
    (~/.docker/config.json "proxies"): here one that takes no connection."""
    proxy = f"http://127.0.0.1:{_free_port()}"
    return {name: proxy for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}


@pytest.fixture
def grpc_health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(grace=None)


Serving = health_pb2.HealthCheckResponse


@pytest.mark.parametrize("service", ["db-service", "logging-service"])
@pytest.mark.parametrize(
    ("status", "healthy"), [(Serving.SERVING, True), (Serving.NOT_SERVING, False)]
)
def test_grpc_healthchecks_follow_the_health_service(
    service: str,
    status: Any,
    healthy: bool,
    grpc_health_server: tuple[int, health.HealthServicer],
) -> None:
    # given a gRPC health server answering `status`
    port, servicer = grpc_health_server
    servicer.set("", status)

    # when the compose healthcheck runs against it; then it passes exactly when SERVING
    assert (_run_healthcheck(service, port) == 0) is healthy


@pytest.mark.parametrize("service", ["db-service", "logging-service"])
def test_grpc_healthchecks_ask_the_service_whatever_proxy_the_container_names(
    service: str, grpc_health_server: tuple[int, health.HealthServicer]
) -> None:
    # given a SERVING health server, and a proxy in the container's environment
    port, servicer = grpc_health_server
    servicer.set("", Serving.SERVING)

    # when the compose healthcheck runs; then it asks the service itself, not the proxy
    # (gRPC honours http_proxy: through it every healthcheck failed, and nothing started)
    assert _run_healthcheck(service, port, env=_proxy_environment()) == 0


def test_grpc_healthcheck_fails_when_nothing_listens() -> None:
    assert _run_healthcheck("db-service", _free_port()) != 0


@contextlib.contextmanager
def _readyz_server(status: int) -> Iterator[int]:
    """An HTTP server answering /readyz with `status`: its port."""

    class Readyz(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_gateway_healthcheck_follows_readyz(status: int, healthy: bool) -> None:
    with _readyz_server(status) as port:
        assert (_run_healthcheck("gateway", port) == 0) is healthy


def test_gateway_healthcheck_asks_the_gateway_whatever_proxy_the_container_names() -> None:
    # given a ready gateway, and a proxy in the container's environment; when the compose
    # healthcheck runs, then it asks the gateway itself (urllib honours http_proxy too)
    with _readyz_server(200) as port:
        assert _run_healthcheck("gateway", port, env=_proxy_environment()) == 0


def test_load_balancer_healthcheck_asks_nginx_itself() -> None:
    # busybox's wget honours http_proxy unless told otherwise; it cannot run here
    test = SERVICES["lb"]["healthcheck"]["test"]

    assert test[:2] == ["CMD", "wget"]
    assert test[test.index("-Y") + 1] == "off"


# --- Dockerfile and .dockerignore --------------------------------------------------------------


INSTRUCTIONS = [
    (line.split()[0].upper(), line.split(maxsplit=1)[1])
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def _index(instruction: str, argument_pattern: str) -> int:
    for i, (name, argument) in enumerate(INSTRUCTIONS):
        if name == instruction and re.search(argument_pattern, argument):
            return i
    raise AssertionError(f"no {instruction} matching {argument_pattern!r} in the Dockerfile")


def test_the_image_is_slim_python() -> None:
    (base,) = [arg for name, arg in INSTRUCTIONS if name == "FROM"]
    default = re.search(r"PYTHON_VERSION=(\S+)", DOCKERFILE)

    assert "-slim" in base
    assert default
    assert default[1] == "3.11"


def test_the_services_run_as_an_unprivileged_user() -> None:
    users = [arg for name, arg in INSTRUCTIONS if name == "USER"]

    assert users, "no USER: the services would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert _index("USER", ".") > _index("RUN", "pip install")


def test_the_image_runs_in_production_mode() -> None:
    # given the image's own environment (what `docker run` without -e gets)
    env = [arg for name, arg in INSTRUCTIONS if name == "ENV"]

    # then it is production: development mode's public JWT secret is never accepted
    assert any(re.search(r"(^|\s)MERCH_ENV=production(\s|$)", arg) for arg in env)


def test_the_image_spools_logs_where_its_user_may_write() -> None:
    # given the image's own environment (what `docker run` without -e gets)
    env = " ".join(arg for name, arg in INSTRUCTIONS if name == "ENV")
    spool = re.search(r"(?:^|\s)LOG_SPOOL_DIR=(\S+)", env)

    # then the gateway and db_service spool to the directory the image makes for its user:
    # their default, .merch/spool/<service> under the root-owned /app, cannot be created, and
    # they would start with records kept in memory only and /readyz "degraded"
    assert spool, "the image sets no LOG_SPOOL_DIR"
    assert f"--owner=merch --group=merch {spool[1]}" in DOCKERFILE


def test_dependencies_are_installed_in_a_layer_before_the_code() -> None:
    # the dependency layer depends only on pyproject.toml, so code edits reuse it
    install = _index("RUN", "pip install")
    assert _index("COPY", r"^pyproject\.toml ") < install
    for package in ("gateway", "db_service", "logging_service", "protos"):
        assert _index("COPY", rf"^{package} ") > install, package


def test_the_image_has_everything_the_services_import_and_serve() -> None:
    copied = {arg.split()[0] for name, arg in INSTRUCTIONS if name == "COPY"}
    copied |= {part for name, arg in INSTRUCTIONS if name == "COPY" for part in arg.split()[:-1]}

    assert {"gateway", "db_service", "logging_service", "protos", "openapi.yaml"} <= copied


def _ignored(path: str) -> bool:
    """Docker's rule for a simple .dockerignore: the last matching pattern wins."""
    ignored = False
    for line in DOCKERIGNORE.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/").removeprefix("**/")
        if any(fnmatch.fnmatch(part, pattern) for part in (path, *path.split("/"))):
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "openapi.yaml",
        "gateway/app.py",
        "db_service/migrations/001_users.sql",
        "logging_service/server.py",
        "protos/db_service_pb2.py",
    ],
)
def test_the_build_context_has_what_the_image_copies(path: str) -> None:
    assert not _ignored(path)


def test_every_copied_source_is_in_the_build_context() -> None:
    sources = [src for name, arg in INSTRUCTIONS if name == "COPY" for src in arg.split()[:-1]]

    assert sources
    for src in sources:
        path = src if (ROOT / src).is_file() else f"{src.rstrip('/')}/__init__.py"
        assert not _ignored(path), f"the Dockerfile copies {src}, .dockerignore leaves it out"


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".merch/pg/data",
        ".env",
        "tests/conftest.py",
        "gateway/__pycache__/app.cpython-311.pyc",
        "protos/__pycache__/explain.cpython-311.pyc",
    ],
)
def test_the_build_context_leaves_out_local_state(path: str) -> None:
    assert _ignored(path)


# --- the README section ------------------------------------------------------------------------


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Deploy with Docker\n", 1)[1].split("\n## ", 1)[0]


def readme_table() -> dict[str, list[str]]:
    rows = {}
    for line in readme_section().splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def _inside_address(service: str, monkeypatch: pytest.MonkeyPatch) -> str | None:
    if service in APPS:
        return f"{service}:{_listen_port(service, monkeypatch)}"
    if service == "postgres":
        return "postgres:5432"
    if service == "kafka":
        return "{}:{}".format(*internal_kafka_address())
    return None


def test_the_readme_lists_every_service() -> None:
    assert set(readme_table()) == set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_the_readme_row_matches_compose(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # given the README's row: image, address inside the network, address on the host
    image, inside, outside, _ = readme_table()[service]

    # then each agrees with compose.yaml
    assert image == f"`{SERVICES[service]['image']}`"
    expected_inside = _inside_address(service, monkeypatch)
    assert inside == (f"`{expected_inside}`" if expected_inside else "—")
    host_ports = sorted(published(service).values())
    assert outside == (", ".join(f"`localhost:{p}`" for p in host_ports) if host_ports else "—")


def test_the_readme_names_every_required_variable_and_the_command() -> None:
    section = readme_section()
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    required = {m["name"] for m in INTERPOLATION.finditer(text) if m["op"] == ":?"}
    optional = {m["name"] for m in INTERPOLATION.finditer(text) if m["op"] == ":-"}

    assert required == {"JWT_SECRET", "POSTGRES_PASSWORD"}
    for name in required | optional:
        assert f"{name}=" in section, name
    assert "docker compose up" in section
    for volume in COMPOSE["volumes"]:
        assert f"`{volume}`" in section
    (network,) = COMPOSE["networks"]
    assert f"`{network}`" in section
