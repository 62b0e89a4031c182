# One image for the three services (gateway, db_service, logging_service); compose.yaml picks
# the service with `command`. Build: docker build -t merch-store .
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# The services run as this unprivileged user; the code stays root-owned and read-only to them.
# The log spool's directory is theirs: a named volume mounted there starts with its owner.
RUN groupadd --system --gid 10001 merch \
    && useradd --system --uid 10001 --gid merch --no-create-home --shell /usr/sbin/nologin merch \
    && install -d --owner=merch --group=merch /var/lib/merch/spool

# Dependencies first, from the lock alone, so this layer is rebuilt only when they change, not
# on every code edit. pip installs the pinned installer (uv) hash-checked into a throwaway venv;
# uv installs the runtime set of uv.lock (no extras: the development stack's embedded PostgreSQL
# and Tansu broker stay out, compose runs the real ones) with every hash checked, wheels only,
# into /opt/venv. Nothing is resolved here: an upstream release cannot change the image.
COPY pyproject.toml uv.lock requirements/bootstrap.txt ./
RUN python -m venv /tmp/installer \
    && /tmp/installer/bin/pip install --require-hashes --no-deps --only-binary :all: \
        --requirement bootstrap.txt \
    && UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1 \
        /tmp/installer/bin/uv sync --frozen --no-install-project --no-build --no-dev \
        --python "$(command -v python)" \
    && rm -rf /tmp/installer bootstrap.txt
ENV PATH=/opt/venv/bin:$PATH

# The code, run from /app (PYTHONPATH): openapi.yaml beside it is what the gateway serves.
COPY protos ./protos
COPY plumbing ./plumbing
COPY db_service ./db_service
COPY logging_service ./logging_service
COPY gateway ./gateway
COPY openapi.yaml ./

# Production is also the services' default; said here so that no environment the image runs in
# can inherit development mode: `docker run` without JWT_SECRET refuses to start.
ENV MERCH_ENV=production
# Where the gateway and db_service spool their log records: the directory made for their user
# above. Their own default, .merch/spool/<service> under the root-owned /app, is not theirs to
# create: a `docker run` would keep its records in memory only (a crash loses them), degraded.
ENV LOG_SPOOL_DIR=/var/lib/merch/spool

USER merch:merch

# gateway (and its /metrics), db_service, logging_service, db_service and logging_service metrics
EXPOSE 8081 50051 50052 9101 9102

CMD ["python", "-m", "gateway"]
