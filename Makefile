# One entry point for humans and CI. `make test` is what the README and .ci/run name.
.PHONY: test build lint unit client venv up

VENV := .venv

test: lint build venv unit client

build:
	cargo build --workspace --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo nextest run --workspace --no-fail-fast

client: build venv
	BERTH_BIN=$(CURDIR)/target/debug/berth $(VENV)/bin/pytest tests -q

venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r tests/requirements.txt
	touch $@

up:
	cargo run --release -- up
