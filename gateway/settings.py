"""Gateway configuration: one object, read from the environment once at start."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from plumbing.settings import (
    DEFAULT_ENV,
    DEV_JWT_SECRET,
    MerchEnv,
    MetricsDirectory,
    NonBlank,
    check_durability,
    check_jwt_secret,
    check_target,
    refuse_public_development,
)
from plumbing.workers import WorkerCount


class Settings(BaseSettings):
    """Everything the gateway reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    merch_env: MerchEnv = DEFAULT_ENV
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8081, ge=0, le=65535)
    db_service_addr: NonBlank = "127.0.0.1:50051"
    logging_service_addr: NonBlank = "127.0.0.1:50052"
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    # Written into every token and required back: an empty one would be issued and checked
    # as `iss: ""` (and `JWT_ISSUER: ${JWT_ISSUER:-}` in a compose file makes it so).
    jwt_issuer: NonBlank = "merch-store"
    grpc_timeout_s: float = Field(default=5.0, gt=0, le=60)
    readiness_timeout_s: float = Field(default=1.0, gt=0, le=10)
    # WebSockets one gateway process keeps open at once; one more is refused with 503. Each is
    # memory and a task until its client leaves, however idle.
    websockets_max: int = Field(default=1000, ge=1, le=100_000)
    # …and from one client address (TRUSTED_PROXIES decides what that is), so that one client
    # cannot take them all: idle sockets live as long as their client keeps them.
    websockets_per_client_max: int = Field(default=20, ge=1, le=100_000)
    # How long an open `logs` subscription may stream before the client must re-subscribe. At
    # most a day, the longest a token lives (JWT_TTL_S), at whose expiry the stream ends anyway:
    # it is the TailLogs call's gRPC deadline, and one centuries away overflows: 1e10 or inf
    # ended every subscription at once.
    log_tail_max_s: float = Field(default=3600.0, gt=0, le=86_400)
    # How often a subscription asks db_service whether its token still stands (revocation);
    # at most 30 s, the longest a revoked admin may go on receiving records.
    session_recheck_s: float = Field(default=30.0, gt=0, le=30)
    # In-flight requests get this long to finish after SIGTERM before they are cut off.
    shutdown_grace_s: float = Field(default=5.0, ge=0, le=300)
    # Hostile-input limits (README "Security and limits").
    request_max_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    json_max_depth: int = Field(default=32, ge=2, le=512)
    graphql_max_depth: int = Field(default=10, ge=1, le=100)
    graphql_max_aliases: int = Field(default=15, ge=0, le=1000)
    graphql_max_tokens: int = Field(default=2000, ge=10, le=100_000)
    graphql_max_cost: int = Field(default=5000, ge=1)
    persisted_queries_max: int = Field(default=1000, ge=0, le=100_000)
    persisted_queries_max_chars: int = Field(default=1024 * 1024, ge=0, le=256 * 1024 * 1024)
    # Proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For is believed
    # when telling clients apart for the per-client limits; none by default.
    trusted_proxies: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode
    ] = ()
    log_shipping: bool = True
    log_queue_max: int = Field(default=10_000, ge=1, le=1_000_000)
    log_batch_max: int = Field(default=2000, ge=1, le=5_000)
    log_flush_interval_s: float = Field(default=1.0, ge=0, le=10)
    # The disk spool records wait in until acknowledged (logging_service.spool); "" = memory only.
    log_spool_dir: str = ".merch/spool/gateway"
    log_spool_sync_ms: int = Field(default=50, ge=1, le=10_000)
    log_spool_max_bytes: int = Field(default=1024**3, ge=4096)
    # batch: fsync every LOG_SPOOL_SYNC_MS; sync: answer only once the call's records are on disk.
    log_durability: Literal["batch", "sync"] = "batch"
    # None means "on in development, off in production".
    graphiql: bool | None = None
    introspection: bool | None = None
    field_suggestions: bool | None = None
    # Net allocations that start a young garbage collection (gateway.heap); CPython's is 700.
    gc_young_threshold: int = Field(default=5000, ge=100, le=1_000_000)
    # Worker processes on the gateway's port (plumbing.workers); `auto` is one per core,
    # capped by the container's CPU quota (plumbing.cpus).
    gateway_workers: WorkerCount = 1
    # Set by the supervisor in each worker it starts (0, 1, …); unset in a lone process.
    worker_index: int | None = Field(default=None, ge=0)
    # Set by the supervisor: where the workers' metrics meet (prometheus-client multiprocess).
    prometheus_multiproc_dir: MetricsDirectory = None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(
                ipaddress.ip_network(item.strip()) for item in value.split(",") if item.strip()
            )
        return value

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        check_jwt_secret(self.jwt_secret, self.merch_env)
        refuse_public_development(self.merch_env, "GATEWAY_HOST", self.gateway_host)
        check_target("DB_SERVICE_ADDR", self.db_service_addr)
        check_target("LOGGING_SERVICE_ADDR", self.logging_service_addr)
        check_durability(self.log_durability, self.log_spool_dir, shipping=self.log_shipping)
        if not self.gateway_host.strip():
            # asyncio would bind every interface for it, not the default 127.0.0.1
            raise ValueError("GATEWAY_HOST must be an address to bind, e.g. 127.0.0.1 or 0.0.0.0")
        return self

    @property
    def is_production(self) -> bool:
        return self.merch_env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else not self.is_production

    @property
    def introspection_enabled(self) -> bool:
        return self.introspection if self.introspection is not None else not self.is_production

    @property
    def field_suggestions_enabled(self) -> bool:
        """Whether errors may hint "Did you mean …?" (off in production: it reveals the schema)."""
        if self.field_suggestions is not None:
            return self.field_suggestions
        return not self.is_production
