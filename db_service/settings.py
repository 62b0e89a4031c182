"""db_service configuration: one object, read from the environment once at start."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from plumbing.settings import (
    DEFAULT_ENV,
    DEV_JWT_SECRET,
    MerchEnv,
    MetricsDirectory,
    NonBlank,
    check_durability,
    check_jwt_secret,
    check_listen_address,
    check_target,
    refuse_public_development,
)
from plumbing.settings import is_loopback as is_loopback
from plumbing.workers import WorkerCount

# OWASP's least Argon2id cost (Password Storage Cheat Sheet: m=19 MiB, t=2, p=1).
PRODUCTION_HASH_MEMORY_KIB_MIN = 19_456
PRODUCTION_HASH_TIME_COST_MIN = 2


def check_password_hash_cost(merch_env: MerchEnv, time_cost: int, memory_kib: int) -> None:
    """Raise ValueError for an Argon2 cost below OWASP's floor outside development."""
    if merch_env == "development":
        return
    if time_cost < PRODUCTION_HASH_TIME_COST_MIN or memory_kib < PRODUCTION_HASH_MEMORY_KIB_MIN:
        raise ValueError(
            "PASSWORD_HASH_TIME_COST and PASSWORD_HASH_MEMORY_KIB below"
            f" {PRODUCTION_HASH_TIME_COST_MIN} passes and {PRODUCTION_HASH_MEMORY_KIB_MIN} KiB"
            " make passwords cheap to guess; they are for development only"
        )


class Settings(BaseSettings):
    """Everything db_service reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    merch_env: MerchEnv = DEFAULT_ENV
    database_url: NonBlank = "postgresql://postgres@127.0.0.1:55432/merch"
    db_service_listen: str = "127.0.0.1:50051"
    logging_service_addr: NonBlank = "127.0.0.1:50052"
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    db_connect_timeout_s: float = Field(default=5.0, gt=0, le=300)
    db_command_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    # Written into every token and required back: an empty one would be issued and checked
    # as `iss: ""` (and `JWT_ISSUER: ${JWT_ISSUER:-}` in a compose file makes it so).
    jwt_issuer: NonBlank = "merch-store"
    jwt_ttl_s: int = Field(default=3600, ge=60, le=86400)
    hash_concurrency: int = Field(default=2, ge=1, le=64)
    # Argon2id's cost per password (argon2-cffi's default, RFC 9106's low-memory profile: 3
    # passes over 64 MiB). Production refuses less than OWASP's floor (19 MiB, 2 passes);
    # development may go lower, so that a test suite registering hundreds of users does not
    # spend minutes hashing.
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=65_536, ge=64, le=1_048_576)
    login_max_failures: int = Field(default=5, ge=1)
    # Rate windows are at most a day: PostgreSQL reports the seconds left in one as an int
    # (db_service.repositories.windows), which 2**31 s overflowed on every counted attempt.
    login_window_s: int = Field(default=60, ge=1, le=86_400)
    # Logins and registrations (each an Argon2 hash) one client address may attempt per window:
    # far above a person at a keyboard, far below a script.
    client_auth_limit: int = Field(default=20, ge=1)
    client_auth_window_s: int = Field(default=60, ge=1, le=86_400)
    # How often expired rate-limit windows are deleted (a bounded batch each time).
    window_sweep_interval_s: float = Field(default=60.0, gt=0, le=3600)
    # Orders one user may place per window; far above any shopper, far below a script.
    order_rate_limit: int = Field(default=30, ge=1)
    order_rate_window_s: int = Field(default=60, ge=1, le=86_400)
    # How often PostgreSQL is probed; health follows the answer (NOT_SERVING while it is down).
    db_health_interval_s: float = Field(default=2.0, gt=0, le=60)
    admin_sid: str | None = None
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    shutdown_grace_s: float = Field(default=5.0, ge=0, le=300)
    db_metrics_port: int = Field(default=0, ge=0, le=65535)  # 0 = no metrics endpoint
    log_shipping: bool = True
    log_queue_max: int = Field(default=10_000, ge=1, le=1_000_000)
    log_batch_max: int = Field(default=2000, ge=1, le=5_000)
    log_flush_interval_s: float = Field(default=1.0, ge=0, le=10)
    # Worker processes on db_service's port (plumbing.workers); `auto` is one per core,
    # capped by the container's CPU quota (plumbing.cpus).
    db_service_workers: WorkerCount = 1
    # Set by the supervisor in each worker it starts (0, 1, …); unset in a lone process.
    worker_index: int | None = Field(default=None, ge=0)
    # Set by the supervisor: where the workers' metrics meet (prometheus-client multiprocess).
    prometheus_multiproc_dir: MetricsDirectory = None
    # The disk spool records wait in until acknowledged (logging_service.spool); "" = memory only.
    log_spool_dir: str = ".merch/spool/db_service"
    log_spool_sync_ms: int = Field(default=50, ge=1, le=10_000)
    log_spool_max_bytes: int = Field(default=1024**3, ge=4096)
    # batch: fsync every LOG_SPOOL_SYNC_MS; sync: answer only once the call's records are on disk.
    log_durability: Literal["batch", "sync"] = "batch"
    # Outbox rows (records of committed orders and identity changes) kept while logging_service
    # is away; beyond it new ones are dropped and counted (the change still commits).
    log_outbox_max_rows: int = Field(default=1_000_000, ge=1)

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        check_jwt_secret(self.jwt_secret, self.merch_env)
        refuse_public_development(self.merch_env, "DB_SERVICE_LISTEN", self.db_service_listen)
        check_listen_address("DB_SERVICE_LISTEN", self.db_service_listen)
        check_target("LOGGING_SERVICE_ADDR", self.logging_service_addr)
        check_durability(self.log_durability, self.log_spool_dir, shipping=self.log_shipping)
        admin = (self.admin_sid, self.admin_username, self.admin_password)
        if any(admin) and not all(admin):
            raise ValueError("ADMIN_SID, ADMIN_USERNAME and ADMIN_PASSWORD go together")
        check_password_hash_cost(
            self.merch_env, self.password_hash_time_cost, self.password_hash_memory_kib
        )
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("DB_POOL_MIN must not exceed DB_POOL_MAX")
        return self
