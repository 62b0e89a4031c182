"""The README's configuration table, generated from the services' settings classes.

    python -m scripts.config_table          # rewrite the table in README.md
    python -m scripts.config_table --check  # exit 1 if README.md is out of date

Every field of every Settings class is an environment variable of that name in upper case;
a test fails when a field has no description here or the README table is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"

DESCRIPTIONS: dict[str, str] = {
    "MERCH_ENV": "`production` or `development`; production needs a `JWT_SECRET` of its own and "
    "turns GraphiQL, introspection and field suggestions off; development (`make run`, the "
    "tests) binds loopback addresses only",
    "JWT_SECRET": "HS256 signing key, at least 32 bytes; required in production, a "
    "development-only value is built in",
    "JWT_ISSUER": "`iss` claim written and required in tokens; an empty one is refused at start",
    "JWT_TTL_S": "token lifetime in seconds",
    "GATEWAY_HOST": "address the gateway binds",
    "GATEWAY_PORT": "port of the gateway (GraphQL, REST, health, metrics)",
    "DB_SERVICE_ADDR": "where the gateway finds db_service (`host:port`, or "
    "`dns:///name:port` for every replica of a name)",
    "DB_SERVICE_LISTEN": "address db_service binds (`host:port`; port 0 picks a free one)",
    "LOGGING_SERVICE_ADDR": "where log records are shipped (and `make logs` tails from); "
    "`host:port`",
    "LOGGING_SERVICE_LISTEN": "address logging_service binds (`host:port`)",
    "DATABASE_URL": "PostgreSQL DSN; with `make run`, set it to use your own server",
    "DB_POOL_MIN": "asyncpg pool: connections kept open",
    "DB_POOL_MAX": "asyncpg pool: most connections",
    "DB_CONNECT_TIMEOUT_S": "bound on opening one database connection (at most 300)",
    "DB_COMMAND_TIMEOUT_S": "bound on one SQL statement (at most 3600)",
    "HASH_CONCURRENCY": "Argon2 hashes computed at once (worker threads)",
    "PASSWORD_HASH_TIME_COST": "Argon2id passes per password hash (at least 2 outside "
    "development, OWASP's floor)",
    "PASSWORD_HASH_MEMORY_KIB": "Argon2id memory per password hash, in KiB (at least 19456 "
    "outside development, OWASP's floor); existing hashes keep their own cost",
    "LOGIN_MAX_FAILURES": "login (and current-password) attempts allowed per account and "
    "client per window",
    "LOGIN_WINDOW_S": "login throttling window in seconds (at most 86400)",
    "CLIENT_AUTH_LIMIT": "logins, registrations and current-password checks one client address "
    "may attempt per window (each costs an Argon2 hash); more is 429 with Retry-After",
    "CLIENT_AUTH_WINDOW_S": "per-client login and registration window in seconds (at most 86400)",
    "WINDOW_SWEEP_INTERVAL_S": "how often expired login, client and order windows are deleted "
    "(at most 10 000 rows per table each time)",
    "TRUSTED_PROXIES": "proxies whose `X-Forwarded-For` is believed when telling clients apart "
    "(comma-separated addresses or CIDR networks, e.g. `10.0.0.0/8,::1`); with none, the TCP "
    "peer is the client and the header is ignored",
    "ADMIN_SID": "sid of the admin created or updated at start (with the two below)",
    "ADMIN_USERNAME": "username of that admin",
    "ADMIN_PASSWORD": "password of that admin",
    "SHUTDOWN_GRACE_S": "seconds in-flight requests and RPCs may finish after SIGTERM (the "
    "gateway flushes its log within it too; at most 300)",
    "GRPC_TIMEOUT_S": "deadline of every gateway → db_service call",
    "READINESS_TIMEOUT_S": "deadline of each health check behind `/readyz`",
    "PERSISTED_QUERIES_MAX": "documents kept for hash-only (persisted) GraphQL requests, per "
    "gateway process",
    "PERSISTED_QUERIES_MAX_CHARS": "total characters of those documents, per gateway process "
    "(least recently used evicted first)",
    "LOG_SHIPPING": "`false` records nothing, outbox rows included (used by the benchmark's "
    "logging-off run)",
    "LOG_QUEUE_MAX": "log records held in memory (waiting for the spool's writer, or queued when "
    "there is no spool) before new ones are dropped (and counted)",
    "LOG_SPOOL_DIR": "directory of the disk spool where log records wait until logging_service "
    "acknowledges them; each process sharing it (workers, replicas) locks a slot `slot-<n>` of "
    "its own; empty: memory only. `make run` sets it for each service under `MERCH_DATA_DIR`, "
    "which is what moves them there",
    "LOG_SPOOL_SYNC_MS": "the spool writes and fsyncs what waits this often (group commit), or "
    "as soon as a slower fsync ends; a crash loses at most the records of this window (and of "
    "that fsync)",
    "LOG_SPOOL_MAX_BYTES": "largest size of the spool on disk; records beyond it are dropped "
    "(and counted)",
    "LOG_OUTBOX_MAX_ROWS": "outbox records (of committed orders and identity changes) kept while "
    "logging_service is away; beyond it new ones are dropped and counted, the change still "
    "commits",
    "LOG_DURABILITY": "`batch` (answer at once, records durable within `LOG_SPOOL_SYNC_MS`) or "
    "`sync` (answer only once the call's log records are on disk; refused at start with an "
    "empty `LOG_SPOOL_DIR`, unless `LOG_SHIPPING=false`)",
    "LOG_BATCH_MAX": "log records per StreamLogBatches call",
    "LOG_FLUSH_INTERVAL_S": "longest a record waits for its batch; db_service's outbox relay "
    "looks for new rows as often (at most every 0.05 s)",
    "WEBSOCKETS_MAX": "WebSockets one gateway process keeps open at once; one more upgrade is "
    "503 with Retry-After. The gateway raises its soft open-files limit to this + 1,024, up to "
    "the hard one (and says so on stderr when that is lower)",
    "WEBSOCKETS_PER_CLIENT_MAX": "WebSockets one client address (as `TRUSTED_PROXIES` tells it)"
    " may hold open on one gateway process; one more upgrade is 429 RATE_LIMITED with"
    " Retry-After",
    "LOG_TAIL_MAX_S": "longest a `logs` subscription streams before the client re-subscribes "
    "(at most 86400: it also ends when its token expires)",
    "SESSION_RECHECK_S": "how often a subscription re-checks its token with db_service (at most "
    "30); a revoked token ends it within this time",
    "REQUEST_MAX_BYTES": "largest request body (REST and GraphQL) and GraphQL query string; "
    "larger is 413 (414 for a query string) before parsing",
    "JSON_MAX_DEPTH": "deepest nesting of arrays and objects in a JSON body or GraphQL "
    "`variables`; deeper is 400",
    "GRAPHQL_MAX_DEPTH": "deepest field nesting of a GraphQL operation (introspection excluded)",
    "GRAPHQL_MAX_ALIASES": "most aliased fields in a GraphQL operation",
    "GRAPHQL_MAX_TOKENS": "most lexical tokens in a GraphQL document (the parser stops there)",
    "GRAPHQL_MAX_COST": "highest GraphQL operation cost: 1 per field, a list field's selection "
    "times its `first` (20 when omitted)",
    "FIELD_SUGGESTIONS": '"Did you mean …?" hints in GraphQL errors (default: on in '
    "development only)",
    "ORDER_RATE_LIMIT": "orders (attempts, not idempotent replays) one user may place per window; "
    "more is 429 with Retry-After",
    "ORDER_RATE_WINDOW_S": "order rate-limit window in seconds (at most 86400)",
    "DB_HEALTH_INTERVAL_S": "how often db_service probes PostgreSQL; health is NOT_SERVING while "
    "the probe fails",
    "GRAPHIQL": "serve GraphiQL at `GET /graphql` (default: on in development only)",
    "INTROSPECTION": "allow schema introspection (default: on in development only)",
    "KAFKA_BOOTSTRAP_SERVERS": "Kafka brokers (`host:port`, comma-separated); with `make run`, "
    "set it to use your own",
    "KAFKA_TOPIC": "topic the records are produced to (Kafka's rule: letters, digits, `.`, `_`, "
    "`-`)",
    "KAFKA_TOPIC_PARTITIONS": "partitions when the topic is created",
    "KAFKA_TOPIC_REPLICATION": "replication factor when the topic is created",
    "KAFKA_IDEMPOTENCE": "`auto` (use idempotent production where the broker supports it; the "
    "development broker does not), `on` or `off`; without it a call first checks, with one "
    "metadata request, that the broker still has the topic, and again before a later message "
    "at most every 50 ms",
    "KAFKA_REQUEST_TIMEOUT_S": "bound on one Kafka request",
    "KAFKA_PRODUCE_TIMEOUT_S": "bound on Kafka acknowledging all records of one log stream call",
    "KAFKA_HEALTH_INTERVAL_S": "how often an idle producer checks the broker (at most 300)",
    "KAFKA_RETRY_BACKOFF_MAX_S": "longest pause between reconnection attempts (at most 300)",
    "DB_METRICS_PORT": "Prometheus port of db_service: RPCs per method and outcome, pool usage "
    "(0: off)",
    "LOG_TAILS_MAX": "TailLogs streams (`logs` subscriptions, `make logs`) open at once, each a"
    " Kafka consumer; one more is refused with RESOURCE_EXHAUSTED (a `logs` subscription:"
    " RATE_LIMITED, retry after 5 s) until one ends",
    "LOGGING_METRICS_PORT": "Prometheus port of logging_service (0: off)",
    "GC_YOUNG_THRESHOLD": "net allocations that start a young garbage collection in the "
    "gateway (CPython's default is 700: a collection every few requests under load)",
    "GATEWAY_WORKERS": "gateway worker processes on `GATEWAY_PORT` (`auto`: one per core, "
    "capped by the container's CPU quota); "
    'more than 1 makes this process their supervisor (README "Scaling out")',
    "DB_SERVICE_WORKERS": "db_service worker processes on `DB_SERVICE_LISTEN` (`auto`: one per "
    "core, capped by the container's CPU quota); more than 1 makes this process their "
    "supervisor, serving `DB_METRICS_PORT`",
    "WORKER_INDEX": "set by the supervisor in each worker (0, 1, …), for per-worker files; "
    "leave unset",
    "PROMETHEUS_MULTIPROC_DIR": "set by the supervisor: where the workers' metrics meet "
    "(prometheus-client multiprocess mode); leave unset",
    "MERCH_DATA_DIR": "where `make run` keeps PostgreSQL's data and the services' log spools "
    "(`spool/gateway`, `spool/db_service`)",
    "MERCH_PG_PORT": "port of the PostgreSQL that `make run` starts",
    "MERCH_KAFKA_PORT": "port of the broker that `make run` starts",
    "DB_SERVICE_PORT": "port `make run` gives db_service",
    "LOGGING_SERVICE_PORT": "port `make run` gives logging_service (and `make logs` tails, unless"
    " `LOGGING_SERVICE_ADDR` is set)",
    "MERCH_READY_TIMEOUT": "seconds `make run` waits for `/readyz` to name every dependency "
    "SERVING",
}

# Variables of `make run` itself (scripts/devstack.py), with their defaults.
DEVSTACK: dict[str, str] = {
    "MERCH_DATA_DIR": "`.merch`",
    "MERCH_PG_PORT": "`55432`",
    "MERCH_KAFKA_PORT": "`9092`",
    "DB_SERVICE_PORT": "`50051`",
    "LOGGING_SERVICE_PORT": "`50052`",
    "GATEWAY_PORT": "`8081`",
    "MERCH_READY_TIMEOUT": "`90`",
}


def _settings() -> dict[str, type[BaseModel]]:
    from db_service.settings import Settings as DBSettings
    from gateway.settings import Settings as GatewaySettings
    from logging_service.settings import Settings as LoggingSettings

    return {
        "gateway": GatewaySettings,
        "db_service": DBSettings,
        "logging_service": LoggingSettings,
    }


def _default(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "development-only value"
    if value is None:
        return "unset"
    if value == ():
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def rows() -> dict[str, tuple[list[str], list[str]]]:
    """Variable → (readers, defaults), in a stable order."""
    table: dict[str, tuple[list[str], list[str]]] = {}
    for service, settings in _settings().items():
        for name, field in settings.model_fields.items():
            readers, defaults = table.setdefault(name.upper(), ([], []))
            readers.append(service)
            default = _default(field.default)
            if default not in defaults:
                defaults.append(default)
    for name, default in DEVSTACK.items():
        readers, defaults = table.setdefault(name, ([], []))
        readers.append("`make run`")
        if default not in defaults:
            defaults.append(default)
    return table


def render() -> str:
    lines = ["| variable | default | read by | what it does |", "|---|---|---|---|"]
    for name, (readers, defaults) in rows().items():
        lines.append(
            f"| `{name}` | {' / '.join(defaults)} | {', '.join(readers)} | {DESCRIPTIONS[name]} |"
        )
    return "\n".join(lines)


def updated(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{render()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    current = README.read_text(encoding="utf-8")
    fresh = updated(current)
    if "--check" in argv:
        if fresh != current:
            print("README.md's configuration table is stale: run `make readme`", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
