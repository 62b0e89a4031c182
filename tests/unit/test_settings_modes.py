"""Production unless told otherwise, and development mode only on this machine.

Each service's settings object, built from an environment with no MERCH_ENV: production, so it
needs a JWT secret of its own and serves no GraphiQL or introspection; MERCH_ENV=development
refuses any listen address but a loopback one.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from db_service.settings import Settings as DBSettings
from db_service.settings import is_loopback as db_is_loopback
from gateway.settings import Settings as GatewaySettings
from logging_service.settings import Settings as LoggingSettings
from logging_service.settings import is_loopback as logging_is_loopback

SECRET = "a-real-production-secret-0123456789-abcdef"
SERVICES: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "db_service": DBSettings,
    "logging_service": LoggingSettings,
}
# The address each service binds: (its setting, the value used for "port" below).
LISTEN = {
    "gateway": ("GATEWAY_HOST", "{host}"),
    "db_service": ("DB_SERVICE_LISTEN", "{host}:50051"),
    "logging_service": ("LOGGING_SERVICE_LISTEN", "{host}:50052"),
}


@pytest.fixture(autouse=True)
def bare_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting comes from the environment the tests run in."""
    for settings_class in SERVICES.values():
        for name in settings_class.model_fields:
            monkeypatch.delenv(name.upper(), raising=False)


def _build(service: str, **values: Any) -> Any:
    return SERVICES[service](**values)


@pytest.mark.parametrize("service", SERVICES)
def test_the_default_mode_is_production(service: str) -> None:
    # given no MERCH_ENV, and the secret production needs where the service signs or checks
    secret = {} if service == "logging_service" else {"jwt_secret": SECRET}

    # when the settings are read
    settings = _build(service, **secret)

    # then they are production's
    assert settings.merch_env == "production"


def test_production_by_default_means_no_graphiql_introspection_or_suggestions() -> None:
    settings = GatewaySettings(jwt_secret=SECRET)

    assert not settings.graphiql_enabled
    assert not settings.introspection_enabled
    assert not settings.field_suggestions_enabled


@pytest.mark.parametrize("service", ["gateway", "db_service"])
def test_no_merch_env_and_no_jwt_secret_is_refused(service: str) -> None:
    # given neither MERCH_ENV nor JWT_SECRET; when the settings are read
    with pytest.raises(ValidationError) as refused:
        _build(service)

    # then they are refused, naming the missing secret and the mode that needs it
    (error,) = refused.value.errors()
    assert "JWT_SECRET" in error["msg"]
    assert "production is the default" in error["msg"]


@pytest.mark.parametrize("service", ["gateway", "db_service"])
def test_development_mode_has_its_own_secret(service: str) -> None:
    settings = _build(service, merch_env="development")

    assert settings.merch_env == "development"


NOT_LOOPBACK = ["0.0.0.0", "[::]", "192.168.1.10", "10.0.0.1", "example.com", ""]
LOOPBACK = ["127.0.0.1", "127.0.0.2", "localhost", "[::1]"]


def _listen(service: str, host: str) -> dict[str, str]:
    variable, template = LISTEN[service]
    value = "::1" if service == "gateway" and host == "[::1]" else template.format(host=host)
    return {variable.lower(): value}


@pytest.mark.parametrize("host", NOT_LOOPBACK)
@pytest.mark.parametrize("service", SERVICES)
def test_development_mode_refuses_to_listen_beyond_this_machine(service: str, host: str) -> None:
    # given development mode and an address other machines can reach
    address = _listen(service, host)

    # when the settings are read
    with pytest.raises(ValidationError) as refused:
        _build(service, merch_env="development", **address)

    # then they are refused in one line naming the setting
    (error,) = refused.value.errors()
    assert LISTEN[service][0] in error["msg"]
    assert "loopback" in error["msg"]
    assert "\n" not in error["msg"]


@pytest.mark.parametrize("host", LOOPBACK)
@pytest.mark.parametrize("service", SERVICES)
def test_development_mode_listens_on_loopback(service: str, host: str) -> None:
    settings = _build(service, merch_env="development", **_listen(service, host))

    assert settings.merch_env == "development"


@pytest.mark.parametrize("service", SERVICES)
def test_production_listens_anywhere(service: str) -> None:
    secret = {} if service == "logging_service" else {"jwt_secret": SECRET}

    settings = _build(service, **_listen(service, "0.0.0.0"), **secret)

    assert settings.merch_env == "production"


@pytest.mark.parametrize(
    "address",
    [*LOOPBACK, "::1", "127.0.0.1:1", "[::1]:1", "localhost:1", *NOT_LOOPBACK, "0.0.0.0:1"],
)
def test_both_loopback_rules_agree(address: str) -> None:
    # logging_service keeps its own copy (it depends on no other service); they must not drift
    assert db_is_loopback(address) == logging_is_loopback(address)
