# beacon: `make run` serves, `make test` runs every test. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.deps-stamp
RUST_SRC := $(shell find rust/src -name '*.rs') rust/Cargo.toml Cargo.toml

.PHONY: run test test-rust test-python build-dev build-prod lint fmt bench bench-load clean deps system-deps

$(STAMP): pyproject.toml
	PYTHON=$(PYTHON) scripts/check-toolchain
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip 'maturin>=1.7,<2'
	$(VENV)/bin/maturin develop -q --release -E dev
	scripts/httptools-sse42 $(VENV)
	touch $@

deps: $(STAMP)

# Debian packages the tests compare against or need (ruby-rack: the rack reference).
system-deps:
	scripts/system-deps

$(VENV)/.build-prod: $(STAMP) $(RUST_SRC)
	$(VENV)/bin/maturin develop --release -q -E dev
	touch $@

build-dev: $(STAMP)
	$(VENV)/bin/maturin develop -q -E dev
	rm -f $(VENV)/.build-prod

build-prod: $(VENV)/.build-prod

run: build-prod
	$(VENV)/bin/beacon serve $(ARGS)

test-rust:
	cargo test --manifest-path rust/Cargo.toml --release

test-python: build-prod system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint test-rust test-python

lint: build-prod  # stubtest checks the stub against the built extension
	cargo fmt --all -- --check
	cargo clippy --manifest-path rust/Cargo.toml --all-targets --features python -- -D warnings
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/ruff format --check python tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy -p bench.load  # the load benchmark's harness, strict too
	$(PY) -m mypy.stubtest beacon._beacon

fmt: $(STAMP)
	cargo fmt --all
	$(VENV)/bin/ruff format python tests bench
	$(VENV)/bin/ruff check --fix python tests bench

bench: build-prod system-deps
	cargo bench --manifest-path rust/Cargo.toml --bench core
	$(PY) -m pytest bench --benchmark-only -p no:randomly $(PYTEST_ARGS)
	$(MAKE) bench-load

clean:
	rm -rf $(VENV) target data

# The Debian package (packaging/build-deb says how and why), and its tests: root, a machine
# without beacon installed; they install, run, upgrade, remove and purge it (packaging/test-deb).
.PHONY: deb test-deb
deb:
	packaging/build-deb

test-deb: deb
	packaging/test-deb

# The load benchmark: beacon vs nginx vs a pure-Python server under wrk, three request shapes,
# fixed-rate and idle runs (bench/load/run.py). BENCH_QUICK=1 for a short run;
# BENCH_ARGS="--help" for every knob. bench-readme: the latest full run's tables into README.md.
# bench-load-test: the harness's own fast checks (what wrk sends, each server's answers).
.PHONY: bench-readme bench-load-test bench-stall bench-profile bench-noise
bench-load: build-prod
	scripts/bench-deps
	$(PY) -m bench.load.run $(BENCH_ARGS)

bench-readme: $(STAMP)
	$(PY) -m bench.load.readme

# bench-stall: a 3 s broker stall under load, the server's peak RSS (bench/load/stall.py).
bench-stall: build-prod
	scripts/bench-deps
	$(PY) -m bench.load.stall $(BENCH_ARGS)

# bench-profile: each shape's CPU per request by library and thread, beacon and nginx
# (bench/load/profile.py; needs perf, from Debian's linux-perf).
bench-profile: build-prod
	scripts/bench-deps
	$(PY) -m bench.load.profile $(BENCH_ARGS)

# bench-noise: how far apart two identical servers' fixed-rate p99 land on this host, beside
# beacon's, over 10/30/60 s windows of one 300 s run (bench/load/noise.py).
bench-noise: build-prod
	scripts/bench-deps
	$(PY) -m bench.load.noise $(BENCH_ARGS)

bench-load-test: build-prod
	scripts/bench-deps
	$(PY) -m pytest bench/load -p no:randomly $(PYTEST_ARGS)

# Fuzzing (fuzz/, scripts/fuzz, tests/test_fuzz_http.py). `make fuzz`: every cargo-fuzz
# target for FUZZ_SECONDS each, then the HTTP front-end fuzzer with FUZZ_EXAMPLES examples
# per test. `make fuzz-ci`: the short bounded pass CI runs.
FUZZ_SECONDS ?= 60
FUZZ_EXAMPLES ?= 2000

.PHONY: fuzz fuzz-ci

fuzz: build-prod
	scripts/fuzz $(FUZZ_SECONDS)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/test_fuzz_http.py tests/test_fuzz_regressions.py $(PYTEST_ARGS)

fuzz-ci:
	scripts/fuzz 15

# Fault injection (tests/reliability; also part of `make test`, with 45 s loads) and the soak.
# `make reliability` runs only the fault scenarios, with the 120 s broker-kill load the issue
# asks for, and prints one table of their figures. `make soak` runs 30 min (SOAK_MINUTES).
.PHONY: reliability soak
RELIABILITY_OUT ?= target/reliability.jsonl
RELIABILITY_LOAD_S ?= 120
SOAK_MINUTES ?= 30

reliability: build-prod system-deps
	@mkdir -p $(dir $(RELIABILITY_OUT)) && rm -f $(RELIABILITY_OUT)
	BEACON_RELIABILITY_OUT=$(abspath $(RELIABILITY_OUT)) \
	BEACON_RELIABILITY_LOAD_S=$(RELIABILITY_LOAD_S) \
	    $(PY) -m pytest tests/reliability -s -p no:randomly $(PYTEST_ARGS); \
	status=$$?; echo; scripts/reliability-report $(RELIABILITY_OUT) || status=1; exit $$status

soak: build-prod system-deps
	cd tests && BEACON_SOAK_MINUTES=$(SOAK_MINUTES) ../$(PY) -m reliability.soak
