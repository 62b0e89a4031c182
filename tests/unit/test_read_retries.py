"""The gateway's channel retries exactly the RPCs the proto declares free of side effects."""

from __future__ import annotations

import json

from google.protobuf import descriptor_pb2

import protos.db_service_pb2 as pb
from gateway.backends import SERVICE_CONFIG

NO_SIDE_EFFECTS = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


def _retried() -> set[str]:
    config = json.loads(SERVICE_CONFIG)
    return {
        name["method"]
        for method_config in config["methodConfig"]
        if "retryPolicy" in method_config
        for name in method_config["name"]
    }


def test_the_retry_policy_names_exactly_the_rpcs_without_side_effects() -> None:
    # given the proto's declaration of which RPCs may be repeated
    service = pb.DESCRIPTOR.services_by_name["DBService"]
    declared = {
        m.name for m in service.methods if m.GetOptions().idempotency_level == NO_SIDE_EFFECTS
    }

    # then the channel retries those, every read, and nothing else
    assert declared
    assert _retried() == declared


def test_no_write_is_retried_by_the_channel() -> None:
    writes = {"CreateUser", "Login", "UpdateUser", "DeactivateUser", "CreateProduct"}
    writes |= {"UpdateProduct", "PlaceOrder", "CancelOrder"}

    assert not writes & _retried()
