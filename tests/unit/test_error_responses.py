"""One place per protocol turns an ApiError into what the client reads."""

from __future__ import annotations

import orjson
import pytest
from graphql import GraphQLError

from gateway.errors import ApiCode, ApiError
from gateway.graphql.errors import coded_execution_error, error_response
from gateway.rest.common import error_response as rest_error_response

ERRORS = [
    ApiError(ApiCode.RATE_LIMITED, "too many login attempts", http_status=429, retry_after_s=3),
    ApiError.not_found("product 7 not found"),
    ApiError.internal(),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.code)
def test_a_refused_graphql_request_and_a_failed_field_say_the_same(error: ApiError) -> None:
    # given one failure, met before execution and while resolving a field
    refused = orjson.loads(bytes(error_response(error).body))["errors"][0]
    in_field = coded_execution_error(GraphQLError("x", original_error=error)).formatted

    # then both carry the same message and extensions
    assert refused == {"message": in_field["message"], "extensions": in_field["extensions"]}


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.code)
def test_a_rest_error_body_has_the_code_and_message(error: ApiError) -> None:
    response = rest_error_response(error)

    assert response.status_code == error.http_status
    assert orjson.loads(bytes(response.body)) == {
        "error": {"code": error.code, "message": error.message}
    }


def test_the_internal_error_says_nothing_about_the_bug() -> None:
    error = ApiError.internal()

    assert (error.code, error.http_status, error.message) == (
        ApiCode.INTERNAL_SERVER_ERROR,
        500,
        "internal error",
    )
