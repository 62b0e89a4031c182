# Merch Store — every developer command. Needs only Python >= 3.11 on the PATH.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed

# Every install comes from uv.lock (exact versions, sha256 hashes), wheels only: nothing is
# resolved or built at install time. The project itself runs from the checkout, not installed.
SYNC := $(UV) sync --frozen --no-install-project --no-build --extra dev --extra test
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test test-slow lint typecheck pytest protos schema readme postman logs bench lock clean

# A new venv, the installer from requirements/bootstrap.txt (hash-checked), then the lock.
$(STAMP): pyproject.toml uv.lock requirements/bootstrap.txt
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps --only-binary :all: \
		--requirement requirements/bootstrap.txt
	$(SYNC) --quiet --python $(PY)
	touch $(STAMP)

## run: PostgreSQL, the broker and the three services; GraphiQL on http://127.0.0.1:8081/graphql
run: $(STAMP)
	$(PY) -m scripts.devstack

## test: lint (and the import contracts), type-check and the whole test suite against real PostgreSQL, broker and services
test: lint typecheck pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(PY) -m mypy

# The tests start hundreds of service processes, and each imports our code and its libraries.
# Their bytecode is cached under .merch/pycache, outside the tree, even where the environment
# says PYTHONDONTWRITEBYTECODE: there every process compiled every module again, and each pytest
# run rewrote the asserts of every test module before running one.
TEST_ENV := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/.merch/pycache

pytest: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest

## test-slow: the long variants of the fault tests (a 60 s logging-service outage)
test-slow: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -m slow

## protos: regenerate protos/*_pb2.py, *_pb2.pyi and *_pb2_grpc.py from the .proto files
protos: $(STAMP)
	$(PY) -m protos.generate

## schema: export the GraphQL SDL to schema.graphql
schema: $(STAMP)
	$(PY) -m gateway.export_schema > schema.graphql

## readme: regenerate README.md's configuration table from the settings classes
readme: $(STAMP)
	$(PY) -m scripts.config_table

## postman: regenerate the Postman collection from openapi.yaml
postman: $(STAMP)
	$(PY) -m scripts.postman

## logs: follow the log-channel topic like a console consumer (of `make run`'s LOGGING_SERVICE_PORT)
# The port `make run` moved logging_service to, unless LOGGING_SERVICE_ADDR names one itself: a
# tail of the default port would follow another stack's topic, or wait, without saying why.
logs: $(STAMP)
	$(PY) -m logging_service tail $(if $(LOGGING_SERVICE_ADDR),,$(if $(LOGGING_SERVICE_PORT),--target 127.0.0.1:$(LOGGING_SERVICE_PORT)))

## bench: the benchmark suite (options: make bench BENCH_ARGS="--quick")
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

## lock: re-resolve uv.lock from pyproject.toml (one package newer: make lock UPGRADE=name)
lock: $(STAMP)
	$(UV) lock $(if $(UPGRADE),--upgrade-package $(UPGRADE))
	$(PY) -m scripts.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
