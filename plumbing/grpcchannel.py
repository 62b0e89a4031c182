"""What every gRPC channel of the services shares."""

from __future__ import annotations

# Dial the configured address itself. gRPC otherwise honours http_proxy, https_proxy and
# grpc_proxy from the environment, which hosts often set for their web traffic: every call to
# db_service and logging_service then went to the proxy, and both were UNREACHABLE. The
# services' peers are named by DB_SERVICE_ADDR and LOGGING_SERVICE_ADDR, never by a proxy.
DIRECT = ("grpc.enable_http_proxy", 0)
