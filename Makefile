# Concord: `make setup` once, then `make demo` or `make test`. `make help` lists targets.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest

.DEFAULT_GOAL := help
.PHONY: help setup up down status demo test test-unit lint bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: ## install everything: .venv, JDKs, Maven artifacts, Trino (idempotent)
	@bash infra/bootstrap.sh

up: setup ## start Kafka and Trino on 127.0.0.1 (waits until healthy)
	@$(BIN)/concord up

down: ## stop the demo's processes, the speed job, Kafka and Trino
	@if [ -x $(BIN)/concord ]; then $(BIN)/concord down; else echo "nothing to stop: no .venv"; fi

status: ## health of each component
	@$(BIN)/concord status

demo: up ## the platform live: generated stream, speed job, batch every 3 min, serving views
	@$(BIN)/concord demo

test: setup ## unit, integration and end-to-end tests with the real engines
	@bash infra/run_tests.sh tests

test-unit: setup ## unit tests only (no services)
	@bash infra/run_tests.sh tests/unit

lint: setup ## ruff and mypy (strict)
	@$(BIN)/ruff check .
	@$(BIN)/mypy

bench: setup ## all benchmarks, figures printed (see BENCHMARKS.md); takes ~4 h
	@$(BIN)/python -m bench.foundation
	@$(BIN)/python -m bench.produce --messages 1000000
	@$(BIN)/python -m bench.ingest --backlog 10000000 --seeded 30000000
	@$(BIN)/python -m bench.recompute --trades 10000000
	@$(BIN)/python -m bench.quiet_run
	@$(BIN)/python -m bench.serving_latency
	@$(BIN)/python -m bench.serving_latency --analyst
	@$(BIN)/python -m bench.serving_latency --live
	@$(BIN)/python -m bench.dashboard
	@$(BIN)/python -m bench.speed
	@$(BIN)/python -m bench.faults
	@# 30 min; at its default 5,000 msg/s the batch loop cannot keep up on 2 cores (BENCHMARKS.md)
	@$(BIN)/python -m bench.soak --rate 200 --think 10
	@$(BIN)/python -m bench.cluster

clean: down ## remove runtime state ($$CONCORD_HOME); keeps .venv and artifacts
	rm -rf .concord
