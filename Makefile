# One entry point for humans and CI. `make test` is what the README and .ci/run name.
.PHONY: test build lint unit client venv docker tools buildtools up bench ha-soak

# Every feature, the etcd store backend's included (its build needs protoc).
FEATURES := --all-features

VENV := .venv

test: lint build venv docker unit client

build: buildtools
	cargo build --workspace --all-targets $(FEATURES)

lint: buildtools
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets $(FEATURES) -- -D warnings

# protoc and etcd from Debian: the etcd backend's build and its tests.
buildtools:
	scripts/ensure-build-tools

# A Docker daemon and the local test image: the Docker tests run against them, never skip.
docker:
	scripts/ensure-docker
	scripts/build-test-image

unit: docker
	cargo nextest run --workspace --no-fail-fast $(FEATURES)

# Debian tools the client suites drive (faketime).
tools:
	scripts/ensure-test-tools

# Three pytest sessions: the tests that mostly wait run beside the others (scripts/client-tests).
client: build venv docker tools
	BERTH_BIN=$(CURDIR)/target/debug/berth scripts/client-tests

venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r tests/requirements.txt
	touch $@

up: docker
	cargo run --release -- up

# Figures for the README's performance section.
bench: docker buildtools
	cargo build --release -p berth --features etcd
	target/release/berth bench run-task --tasks 30 --awsvpc-fleet 200
	target/release/berth bench sigv4
	target/release/berth bench scheduler --instances 5000 --tasks 100000 --strategy binpack
	target/release/berth bench scheduler --instances 5000 --tasks 100000 --strategy spread
	BERTH_LOG=error target/release/berth bench fleet --instances 5000 --tasks 100000
	BERTH_LOG=error target/release/berth bench fleet --scaling --instances 5000 --tasks 20000
	BERTH_LOG=error target/release/berth bench fleet --store both --instances 1000 --tasks 20000
	BERTH_LOG=error target/release/berth bench restart --tasks 1000000
	BERTH_LOG=error target/release/berth bench logs --lines 200000
	BERTH_LOG=error target/release/berth bench filter-logs --events 1000000
	BERTH_LOG=error target/release/berth bench agent-idle --containers 100
	BERTH_LOG=error target/release/berth bench metric-freshness --runs 3
	BERTH_LOG=error target/release/berth bench console --tasks 1000
	BERTH_LOG=error target/release/berth bench proxy
	BERTH_LOG=error target/release/berth bench zero-drop
	BERTH_LOG=error target/release/berth bench autoscaling --targets 1000
	BERTH_LOG=error target/release/berth bench autoscaling-soak --high-resolution --settle-minutes 3
	BERTH_LOG=error target/release/berth bench autoscaling-soak

# Issue 16's full failover run: the leader replica killed -9 every 20 s for 5 minutes under
# 4 writers, then an etcd member (CI runs the same test with 3 kills 8 s apart).
ha-soak: build venv buildtools
	BERTH_HA_KILLS=15 BERTH_HA_KILL_EVERY=20 BERTH_BIN=$(CURDIR)/target/debug/berth \
		$(VENV)/bin/pytest tests/test_ha_failover.py -q -s -p no:cacheprovider
