"""The one place GraphQL errors are made: each gets an `extensions.code`, unexpected ones are
masked, and a refused request gets the GraphQL error shape (REST's: gateway/rest/common.py)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from graphql import ASTValidationRule, GraphQLError, ValuesOfCorrectTypeRule
from graphql.validation.validate import ValidationAbortedError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult, StreamExecutionResult

from gateway.errors import CANCELLED, ApiCode, ApiError
from gateway.rest.common import json_response

log = logging.getLogger(__name__)

MASKED_MESSAGE = "Unexpected error."
# graphql-core ends messages about unknown fields, arguments, types and enum values with
# " Did you mean …?", which spells out the schema to someone who may not see it.
_SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)
_ABORTED = "Validation aborted."  # graphql-core's whole message when its validation budget runs out
# graphql-core ends a message about a bad value with the value itself ("…unknown field 'role',
# found: {…, password: "…"}.", "String cannot represent a non string value: 12345678"): a
# password sent with a typo would come back in the response. The values are cut off; the
# error's locations and path still point at them.
_FOUND = re.compile(r"[,;]?\s*\b[Ff]ound: .*\Z", re.DOTALL)
_REPRESENT = re.compile(r"( cannot represent [^:]*): .*\Z", re.DOTALL)


class ErrorCodes(SchemaExtension):
    """Maps resolver failures to the codes of DESIGN.md §4, in one place.

    `ApiError` (from the backend table in gateway/errors.py) keeps its code and message; errors
    raised before execution are GRAPHQL_PARSE_FAILED or GRAPHQL_VALIDATION_FAILED; anything
    else is a bug, logged here and answered as INTERNAL_SERVER_ERROR with no details.
    With `field_suggestions=False` (production) no message carries a "Did you mean" hint.
    """

    def __init__(self, *, field_suggestions: bool = True) -> None:
        self.field_suggestions = field_suggestions
        self._invalid: set[int] = set()
        self._streamed = False

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = coded_rules(context.validation_rules)
        yield
        # Remembered by identity: a validation error about a variable ("Variable '$x' is never
        # used") is still a validation error, unlike a variable value that fails coercion.
        self._invalid = {id(e) for e in self.execution_context.pre_execution_errors or ()}

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        # A streamed operation's results were coded one by one on their way out.
        if not self._streamed and result is not None and result.errors:
            result.errors = [self._coded(error) for error in result.errors]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Over a WebSocket each result is sent as it comes: code it before it goes."""
        self._streamed = True
        # Only whole results: incremental delivery (@defer, @stream) is not enabled.
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = [self._coded(error) for error in result.errors]
        yield

    def _coded(self, error: GraphQLError) -> GraphQLError:
        if error.path is None and (id(error) in self._invalid or not _has_code(error)):
            # Raised before any resolver ran: the request itself is wrong.
            if self.execution_context.graphql_document is None:
                code = PARSE_FAILED
            elif id(error) in self._invalid:
                code = VALIDATION_FAILED
            else:
                code = variables_error_code(error)
            return request_error(error, code, field_suggestions=self.field_suggestions)
        return coded_execution_error(error)


PARSE_FAILED = ApiCode.GRAPHQL_PARSE_FAILED
VALIDATION_FAILED = ApiCode.GRAPHQL_VALIDATION_FAILED


class ArgumentValuesRule(ValuesOfCorrectTypeRule):
    """graphql-core's check of the values written in a document (arguments, input fields,
    variable defaults), whose errors are the caller's bad input: DESIGN §6 gives the same bad
    argument the same answer whether it is written in the document or sent as a variable, and
    a variable's value that fails coercion is BAD_USER_INPUT."""

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": ApiCode.BAD_USER_INPUT}
        super().report_error(error)


def coded_rules(
    rules: Iterable[type[ASTValidationRule]],
) -> tuple[type[ASTValidationRule], ...]:
    """`rules` with graphql-core's ValuesOfCorrectTypeRule replaced by ArgumentValuesRule."""
    return tuple(ArgumentValuesRule if r is ValuesOfCorrectTypeRule else r for r in rules)


def variables_error_code(error: GraphQLError) -> ApiCode:
    """The code of an error graphql-core raises before execution, once the document is valid:
    a variable value that fails coercion is the caller's input; anything else the document."""
    return ApiCode.BAD_USER_INPUT if error.message.startswith("Variable '$") else VALIDATION_FAILED


def request_error(error: GraphQLError, code: ApiCode, *, field_suggestions: bool) -> GraphQLError:
    """An error about the request itself (parse, validation, variables) with its `code`, or
    the code a validation rule gave it (ArgumentValuesRule)."""
    if isinstance(error.original_error, RecursionError):
        # The parser recursed past Python's limit: say what that means, not how it broke.
        message = "the document is nested too deeply"
    elif isinstance(error, ValidationAbortedError) and error.message == _ABORTED:
        # graphql-core's budget for comparing same-named fields (OverlappingFieldsCanBeMerged),
        # spent by some 850 sibling fields: within every limit of ours, yet refused.
        message = (
            "the document is too large to validate: too many fields to compare in one"
            " selection; send fewer"
        )
    elif field_suggestions:
        message = _without_values(error.message)
    else:
        message = _without_values(_SUGGESTION.sub("", error.message))
    extensions = dict(error.extensions or {})
    extensions.setdefault("code", code)
    return _with(error, message, extensions, keep_original=False)


def _without_values(message: str) -> str:
    """`message` without the input value graphql-core quotes at its end (see _FOUND)."""
    cut = _FOUND.sub("", message)
    if cut != message:
        message = cut if cut.endswith(("?", ".")) else f"{cut}."
    return _REPRESENT.sub(r"\1.", message)


def coded_errors(errors: list[GraphQLError], *, field_suggestions: bool) -> list[dict[str, Any]]:
    """Execution errors as the response lists them: with their codes, formatted."""
    coded = []
    for error in errors:
        if error.path is None and not _has_code(error):
            error = request_error(
                error, variables_error_code(error), field_suggestions=field_suggestions
            )
        else:
            error = coded_execution_error(error)
        coded.append(dict(error.formatted))
    return coded


def _has_code(error: GraphQLError) -> bool:
    return isinstance(error.original_error, ApiError) or "code" in (error.extensions or {})


def coded_execution_error(error: GraphQLError) -> GraphQLError:
    """An error raised while resolving a field, with its code (masked when unexpected)."""
    original = error.original_error
    extensions = dict(error.extensions or {})
    if isinstance(original, ApiError):
        extensions.update(api_error_extensions(original))
        return _with(error, original.message, extensions)
    if "code" in extensions:
        return error
    if original is None:
        extensions["code"] = ApiCode.BAD_USER_INPUT
        return _with(error, error.message, extensions)
    log.error("unexpected error in resolver", exc_info=original)
    return _with(
        error, MASKED_MESSAGE, {"code": ApiCode.INTERNAL_SERVER_ERROR}, keep_original=False
    )


def api_error_extensions(error: ApiError) -> dict[str, object]:
    """An expected failure's `extensions`: its code, and when to retry if it says."""
    extensions: dict[str, object] = {"code": error.code}
    if error.retry_after_s is not None:
        extensions["retryAfter"] = error.retry_after_s
    return extensions


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    """A transport-level refusal of a GraphQL request, in the GraphQL error shape."""
    body = {"errors": [{"message": error.message, "extensions": api_error_extensions(error)}]}
    return json_response(body, error.http_status, headers)


def _with(
    error: GraphQLError, message: str, extensions: dict[str, object], *, keep_original: bool = True
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error if keep_original else None,
        extensions=extensions,
    )


def outcome_of(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, asyncio.CancelledError):
        return CANCELLED
    if isinstance(exc, ApiError):
        return exc.code
    if isinstance(exc, GraphQLError):
        code = (exc.extensions or {}).get("code")
        return str(code) if code else "GRAPHQL_ERROR"
    return ApiCode.INTERNAL_SERVER_ERROR
