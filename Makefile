# One command for the demo, one for the tests; both set themselves up.
#   make demo    run the RAG demo on the embedded default and print the report
#   make test    lint, type-check, build/install the real backends, run every test
#   make stack   start the native collector + Jaeger + Prometheus + Alertmanager
#   make stack-scale  the same with 2 gateways and 2 tail-sampling collectors instead of one
#   make bench   the SDK overhead, drift monitor and import cost benchmarks (docs/performance.md)
#   make bench-peers      otel-ml against the other OpenAI instrumentations, one venv each
#   make bench-collector  our collector pipeline against a pass-through one, with telemetrygen
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml demo_rag/pyproject.toml | sha256sum | cut -c1-12)

.PHONY: venv demo test lint unit backends stack stack-down stack-scale e2e-scale e2e-scale-10k bench bench-peers bench-collector clean

venv: $(STAMP)
$(STAMP): pyproject.toml demo_rag/pyproject.toml
	@echo "==> creating $(VENV) and installing otel-ml[dev] and the demo (demo_rag/)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./demo_rag
	@rm -f $(VENV)/.installed-* && touch $@

demo: venv
	$(BIN)/otel-ml demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# Installs prometheus/alertmanager (Debian) and builds the collector, Jaeger,
# telemetrygen and VictoriaMetrics
# (cached in ~/.cache/otel-ml, keyed by version); prints their paths.
backends:
	bash scripts/backends.sh > .backends.env

test: lint backends
	set -a && . ./.backends.env && set +a && $(BIN)/python -m pytest -p no:cacheprovider

unit: venv
	$(BIN)/python -m pytest -m "not e2e and not integration"

stack: venv backends
	set -a && . ./.backends.env && set +a && $(BIN)/otel-ml stack up

stack-down: venv
	$(BIN)/otel-ml stack down

# The scale-out topology: 2 gateways and 2 tail-sampling collectors (docs/scale-out.md).
stack-scale: venv backends
	set -a && . ./.backends.env && set +a && $(BIN)/otel-ml stack up --topology scale

# Its e2e test as CI runs it (300 traces), and with 10,000 traces (policies and totals).
e2e-scale: venv backends
	set -a && . ./.backends.env && set +a && $(BIN)/python -m pytest -p no:cacheprovider -s tests/e2e/test_e2e_scale.py

e2e-scale-10k: venv backends
	set -a && . ./.backends.env && set +a && OTEL_ML_E2E_SCALE_TRACES=10000 \
		$(BIN)/python -m pytest -p no:cacheprovider -s tests/e2e/test_e2e_scale.py -k policies

bench: venv
	$(BIN)/python bench/bench_sdk.py
	$(BIN)/python bench/bench_drift.py
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_openai.py
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_retrieval.py

bench-peers: venv
	$(BIN)/python bench/bench_peers.py

bench-collector: venv backends
	set -a && . ./.backends.env && set +a && $(BIN)/python bench/bench_collector.py

clean:
	rm -rf $(VENV) .backends.env otel-ml-data build *.egg-info
