"""logging_service configuration: one object, read from the environment once at start."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from plumbing.settings import (
    DEFAULT_ENV,
    MerchEnv,
    NonBlank,
    check_listen_address,
    check_target,
    refuse_public_development,
)
from plumbing.settings import is_loopback as is_loopback

# One KAFKA_BOOTSTRAP_SERVERS entry: a host name, IPv4 or bracketed IPv6 address, and a port
# (aiokafka's 9092 when none is given).
_BROKER = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>[0-9]{1,5}))?")


class Settings(BaseSettings):
    """Everything logging_service (server and tail CLI) reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Production unless told otherwise (plumbing.settings.DEFAULT_ENV); development mode only
    # refuses to listen beyond this machine.
    merch_env: MerchEnv = DEFAULT_ENV
    logging_service_listen: str = "127.0.0.1:50052"
    # Where the tail CLI connects; the same variable the gateway and db_service ship to.
    logging_service_addr: NonBlank = "127.0.0.1:50052"
    kafka_bootstrap_servers: NonBlank = "127.0.0.1:9092"
    # Kafka's own rule for topic names; a broker refuses others only with an error code to
    # CreateTopics, which would leave the service retrying "Kafka not ready" for ever.
    kafka_topic: str = Field(
        default="log-channel", min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$"
    )
    kafka_topic_partitions: int = Field(default=1, ge=1)
    kafka_topic_replication: int = Field(default=1, ge=1)
    # auto: try an idempotent producer, fall back to a plain one if the broker refuses it.
    kafka_idempotence: Literal["auto", "on", "off"] = "auto"
    kafka_request_timeout_s: float = Field(default=5.0, gt=0, le=300)
    # Bound on the wait for Kafka to acknowledge all records of one StreamLogs/StreamLogBatches
    # call (and on handing the records of one message to the producer).
    kafka_produce_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # How often an idle connection to Kafka is checked, so health turns NOT_SERVING on its own.
    kafka_health_interval_s: float = Field(default=5.0, gt=0, le=300)
    kafka_retry_backoff_max_s: float = Field(default=5.0, gt=0, le=300)
    shutdown_grace_s: float = Field(default=5.0, ge=0, le=300)
    # TailLogs streams open at once (each is a Kafka consumer with its connections and its
    # polling); one more is refused with RESOURCE_EXHAUSTED until one ends.
    log_tails_max: int = Field(default=64, ge=1, le=10_000)
    logging_metrics_port: int = Field(default=0, ge=0, le=65535)  # 0 = no metrics endpoint

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _hosts_and_ports(cls, servers: str) -> str:
        # aiokafka takes any string and reports what it cannot use only as a failed connection,
        # "Kafka not ready" on every retry for ever.
        for entry in (item.strip() for item in servers.split(",")):
            match = _BROKER.fullmatch(entry)
            if match is None or not 0 < int(match["port"] or 9092) < 65536:
                raise ValueError(
                    "must be host:port entries separated by commas (an IPv6 host in brackets, "
                    f"a port of 1 to 65535), not {entry!r}"
                )
        return servers

    @field_validator("kafka_topic")
    @classmethod
    def _not_dot_or_dot_dot(cls, topic: str) -> str:
        if topic in (".", ".."):
            raise ValueError("a Kafka topic may not be '.' or '..'")
        return topic

    @model_validator(mode="after")
    def _refuse_public_development(self) -> Settings:
        refuse_public_development(
            self.merch_env,
            "LOGGING_SERVICE_LISTEN",
            self.logging_service_listen,
            needs_jwt_secret=False,
        )
        check_listen_address("LOGGING_SERVICE_LISTEN", self.logging_service_listen)
        # Where the tail CLI (make logs) connects.
        check_target("LOGGING_SERVICE_ADDR", self.logging_service_addr)
        return self

    @property
    def kafka_request_timeout_ms(self) -> int:
        return int(self.kafka_request_timeout_s * 1000)
