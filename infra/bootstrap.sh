#!/usr/bin/env bash
# Creates .venv (Python 3.11) with the pinned dependencies, then hands over to
# `python -m infra.setup` for the JVM side (JDKs, Maven artifacts, Trino).
# Idempotent: a stamp keyed on pyproject.toml + requirements.lock skips pip entirely
# when nothing changed, so a warm run does no network work.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$cand; break
    fi
  done
fi
if [[ -z "$PY" ]]; then
  echo "setup: Python 3.11 is required (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi

stamp=.venv/.concord-deps
want=$(cat pyproject.toml requirements.lock requirements.override | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "setup: .venv is up to date"
else
  echo "setup: installing Python dependencies into .venv"
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet -c requirements.lock -e ".[dev]"
  # apache-beam (pulled in by apache-flink for Python UDF workers) caps pyarrow < 17,
  # while PySpark 4.2's Arrow path (mapInArrow, used by the batch ingest) needs >= 18.
  # apache-flink itself allows < 21. The speed layer's contract UDF exchanges Arrow
  # batches with Flink's Python worker; its integration tests (test_contract_engines,
  # test_speed_pipeline, test_speed_job) prove that path with this pyarrow. So: override
  # beam's cap, deliberately.
  .venv/bin/python -m pip install --quiet --no-deps "$(grep '^pyarrow==' requirements.override)"
  echo "$want" > "$stamp"
fi

exec .venv/bin/python -m infra.setup "$@"
