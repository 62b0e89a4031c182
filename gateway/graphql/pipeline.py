"""The whole route of a GraphQL request over HTTP (POST and GET /graphql), in one object.

    pipeline = GraphQLPipeline(runtime, schema, limits, graphiql=True)
    Route("/graphql", pipeline, methods=["GET", "POST"])

Every GraphQL request over HTTP goes through `GraphQLPipeline.answer`, step by step:

1. body: a POST must be `application/json` (415: no form posts, so no CSRF by a plain HTML
   form), at most REQUEST_MAX_BYTES (413, refused before a byte is parsed), one JSON object
   (a batch or anything else is a 400) nested no deeper than JSON_MAX_DEPTH; a GET's query
   string is bounded the same way (414), each of its fields given at most once (400,
   gateway.queryparams), and its `variables`/`extensions` parsed with the same bound. A GET
   with no `query` from a browser is the GraphiQL page.
2. document: the `query` text, or the text a persisted-query hash stands for
   (gateway.graphql.persisted).
3. parse: graphql-core's parser, stopped at GRAPHQL_MAX_TOKENS (GRAPHQL_PARSE_FAILED).
4. operation: the named one, or the first; an unknown name is a 400, a mutation over GET a
   405 naming POST, a subscription belongs on the WebSocket (400).
5. limits: depth, aliases, cost, introspection nesting (gateway.graphql.limits), measured
   before validation, in time linear in the document.
6. validate: graphql-core's rules (no introspection where it is off); GRAPHQL_VALIDATION_FAILED.
   A document that passes is kept (gateway.graphql.documents): steps 3 and 6 happen once per
   text, and step 5 once per text and `first` variables.
7. plan: the operation's compiled plan, made the first time it runs (gateway.graphql.compiled),
   or none where the compiler does not support the operation.
8. execute: the plan, or the reference executor (graphql-core's `execute` over the same
   Strawberry resolvers). Variables are coerced by graphql-core in both.
9. record: root fields and backend fields are recorded once per call
   (gateway.graphql.recording), DataLoader batches once per batch (gateway.graphql.loaders).
10. error codes: every error gets its `extensions.code` (gateway.graphql.errors).
11. JSON: orjson, `{"data": …, "errors": […]}`.

Every refusal is JSON in the GraphQL shape, `{"errors": [{"message", "extensions": {"code"}}]}`,
with its HTTP status. Subscriptions (WebSocket) are served by Strawberry's view
(gateway.graphql.view) with the same limits, records and codes as schema extensions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

import orjson
from graphql import (
    ExecutionResult,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import ASTValidationRule
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.errors import ApiCode, ApiError
from gateway.graphiql import graphiql_response
from gateway.graphql.analysis import OPERATION_NAME_NEEDED
from gateway.graphql.compiled import Compiler, Plan
from gateway.graphql.context import Context
from gateway.graphql.documents import Documents, Prepared, unlink_tokens
from gateway.graphql.errors import (
    PARSE_FAILED,
    VALIDATION_FAILED,
    coded_errors,
    coded_rules,
    error_response,
    request_error,
)
from gateway.graphql.limits import GraphQLLimits, measure, measure_key, refusal
from gateway.graphql.persisted import PersistedQueries, PersistedQueryError
from gateway.graphql.recording import RecordedFields
from gateway.graphql.schema import Schema
from gateway.jsonbody import JSONRejected, loads, read_body, require_json
from gateway.metrics import COMPILED_PATH, REFERENCE_PATH
from gateway.queryparams import RepeatedParameter, one_value
from gateway.runtime import Runtime

log = logging.getLogger(__name__)

# Parsed and validated documents, by text: parsing and validation are most of the cost of a
# small query. Bounded, so distinct texts sent by an attacker only evict each other.
DOCUMENT_CACHE_TEXTS = 4096
DOCUMENT_CACHE_CHARS = 512 * 1024


class JSONBytes(Response):
    """A 200 with a JSON body already encoded: two ASGI messages and nothing else."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(self.body)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    """Step 1's result: what the client asked for, its types checked."""

    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


class _Refused(Exception):
    """A request answered with errors and no data (a 200 with `"data": null`)."""

    def __init__(self, errors: Sequence[GraphQLError]) -> None:
        self.errors = errors


class GraphQLPipeline:
    """The ASGI app for GET and POST /graphql; see the module docstring for the route."""

    def __init__(
        self,
        runtime: Runtime,
        schema: Schema,
        limits: GraphQLLimits,
        *,
        graphiql: bool,
        compiled: bool = True,
    ) -> None:
        """`compiled=False` runs every operation on the reference executor (the differential
        test compares the two)."""
        settings = runtime.settings
        self.runtime = runtime
        self.schema = schema.graphql_schema
        self.limits = limits
        self.graphiql = graphiql
        self.max_bytes = settings.request_max_bytes
        self.max_json_depth = settings.json_max_depth
        self.persisted = PersistedQueries(
            max_entries=settings.persisted_queries_max,
            max_chars=settings.persisted_queries_max_chars,
        )
        self.documents = Documents(max_entries=DOCUMENT_CACHE_TEXTS, max_chars=DOCUMENT_CACHE_CHARS)
        rules: list[type[ASTValidationRule]] = list(specified_rules)
        if not limits.introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self.rules = coded_rules(rules)
        self.compiler = Compiler(schema, field_suggestions=limits.field_suggestions)
        self.compiled = compiled
        self.middleware = RecordedFields(self.schema)
        self.executor_class = schema.execution_context_class

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response: Response
        try:
            response = await self.answer(request)
        except ApiError as exc:
            response = error_response(exc, {"Allow": "POST"} if exc.http_status == 405 else None)
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        # A GET with neither a document nor a persisted query's hash is a browser asking for
        # GraphiQL; with either, it is an operation to run.
        if request.method in ("GET", "HEAD") and not (
            "query" in request.query_params or "extensions" in request.query_params
        ):
            return self.graphiql_page(request)
        data = await self.read(request)
        try:
            query = self.persisted.resolve(data.query, data.extensions)
        except PersistedQueryError as exc:
            return self.refused([exc.error])
        if not query:
            raise ApiError.http(400, "No GraphQL query found in the request")
        try:
            prepared, operation = self.prepare(query, data, request.method)
        except _Refused as refused:
            return self.refused(refused.errors)
        # A registration is kept only once its document passed (a document refused anyway must
        # not take, or evict, a place in the store).
        self.persisted.keep(query, data.extensions)
        context = Context.create(self.runtime.scope_for(request), self.runtime, request)
        plan = self.plan(prepared, operation)
        if plan is not None:
            COMPILED_PATH.inc()
            body = await plan.run(context, data.variables)
        else:
            REFERENCE_PATH.inc()
            body = await self.run_reference(prepared, operation, context, data.variables)
        return JSONBytes(orjson.dumps(body))

    def graphiql_page(self, request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if not ("text/html" in accept or "*/*" in accept):
            raise ApiError.http(400, "No GraphQL query found in the request")
        if not self.graphiql:
            raise ApiError.http(404, "Not Found")
        return graphiql_response(graphql_path="/graphql")

    async def read(self, request: Request) -> GraphQLRequest:
        """Step 1: the request's fields from a bounded JSON body or query string."""
        if request.method == "POST":
            require_json(request)
            payload = self.loads(await read_body(request, self.max_bytes))
            if isinstance(payload, list):
                raise ApiError.http(400, "batched operations are not accepted")
            if not isinstance(payload, dict):
                raise ApiError.http(400, "the body must be a JSON object")
        else:
            if len(request.scope.get("query_string", b"")) > self.max_bytes:
                raise ApiError.http(414, f"the query string is over {self.max_bytes} bytes")
            payload = {}
            for field in ("query", "variables", "operationName", "extensions"):
                try:
                    value = one_value(request.query_params, field)
                except RepeatedParameter as exc:
                    raise ApiError.http(400, str(exc)) from None
                if value is not None:
                    payload[field] = value
            for field in ("variables", "extensions"):
                if payload.get(field):
                    # Named, as the client sent no body: which parameter is at fault.
                    payload[field] = self.loads(payload[field], f"the query string's `{field}`: ")
        query = payload.get("query")
        if not (query is None or isinstance(query, str)):
            raise _bad_field("query", "a string")
        variables = payload.get("variables")
        if not (variables is None or isinstance(variables, dict)):
            raise _bad_field("variables", "an object")
        extensions = payload.get("extensions")
        if not (extensions is None or isinstance(extensions, dict)):
            raise _bad_field("extensions", "an object")
        name = payload.get("operationName")
        if not (name is None or isinstance(name, str)):
            raise _bad_field("operationName", "a string")
        return GraphQLRequest(query, variables, name, extensions)

    def loads(self, data: str | bytes, where: str = "") -> Any:
        try:
            return loads(data, max_depth=self.max_json_depth)
        except JSONRejected as exc:
            raise ApiError.http(400, f"{where}{exc}") from None

    def prepare(
        self, query: str, data: GraphQLRequest, method: str
    ) -> tuple[Prepared, OperationDefinitionNode]:
        """Steps 3 to 6: the document and the operation to run, within the limits and valid."""
        prepared = self.documents.get(query)
        if prepared is None:
            try:
                document = parse(query, max_tokens=self.limits.max_tokens)
            except GraphQLError as exc:
                raise _Refused([self.request_error(exc, PARSE_FAILED)]) from None
            except RecursionError as exc:
                error = GraphQLError(str(exc), original_error=exc)
                raise _Refused([self.request_error(error, PARSE_FAILED)]) from None
            unlink_tokens(document)
            prepared = Prepared.of(query, document)
            operation = _operation(prepared, data.operation_name, method)
            self.check_limits(prepared, data)
            errors = validate(self.schema, document, self.rules)
            if errors:
                raise _Refused([self.request_error(e, VALIDATION_FAILED) for e in errors])
            self.documents.put(prepared)
            return prepared, operation
        operation = _operation(prepared, data.operation_name, method)
        if not prepared.fixed_measure:
            self.check_limits(prepared, data)
        return prepared, operation

    def check_limits(self, prepared: Prepared, data: GraphQLRequest) -> None:
        key = measure_key(prepared.document, data.operation_name, data.variables)
        known, measured = prepared.measure(key)
        if not known:
            measured = measure(self.schema, prepared.document, key)
            prepared.remember_measure(key, measured)
        error = refusal(self.limits, measured)
        if error is not None:
            raise _Refused([error])

    def plan(self, prepared: Prepared, operation: OperationDefinitionNode) -> Plan | None:
        """Step 7: the operation's compiled plan, compiled on its first run."""
        if not self.compiled:
            return None
        name = operation.name.value if operation.name else None
        if name in prepared.plans:
            plan: Plan | None = prepared.plans[name]
            return plan
        plan = self.compiler.compile(prepared.document, operation)
        prepared.plans[name] = plan
        return plan

    async def run_reference(
        self,
        prepared: Prepared,
        operation: OperationDefinitionNode,
        context: Context,
        variables: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Step 8 without a plan: graphql-core's executor over the schema's resolvers."""
        result = execute(
            self.schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=operation.name.value if operation.name else None,
            middleware=self.middleware,
            executor_class=self.executor_class,
        )
        if isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = coded_errors(
                result.errors, field_suggestions=self.limits.field_suggestions
            )
        return body

    def request_error(self, error: GraphQLError, code: ApiCode) -> GraphQLError:
        return request_error(error, code, field_suggestions=self.limits.field_suggestions)

    def refused(self, errors: Sequence[GraphQLError]) -> Response:
        body = {"data": None, "errors": [dict(e.formatted) for e in errors]}
        return JSONBytes(orjson.dumps(body))


def _bad_field(name: str, kind: str) -> ApiError:
    message = f"The GraphQL operation's `{name}` must be {kind} or null, if provided."
    return ApiError.http(400, message)


def _operation(prepared: Prepared, name: str | None, method: str) -> OperationDefinitionNode:
    """Step 4: the operation `name` picks (the only one when it is None), if this method may
    run it. A document of several operations and no name is refused, as the GraphQL spec's
    GetOperation says: running its first would run what the client may not have meant."""
    operations = prepared.operations
    if name is None and len(operations) > 1:
        raise ApiError.http(400, OPERATION_NAME_NEEDED)
    if name is not None:
        operations = [o for o in operations if o.name and o.name.value == name]
    if not operations:
        if name is None:
            raise ApiError.http(400, "the document has no operation")
        raise ApiError.http(400, f'Unknown operation named "{name}".')
    operation = operations[0]
    if operation.operation is OperationType.SUBSCRIPTION:
        raise ApiError.http(
            400, "subscriptions are served over WebSocket (graphql-transport-ws) only"
        )
    if operation.operation is OperationType.MUTATION and method != "POST":
        # GET and HEAD (a GET without a body) may be sent by any page a browser visits.
        raise ApiError.http(405, f"mutations are not allowed when using {method}")
    return operation
