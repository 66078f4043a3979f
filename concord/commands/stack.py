"""`concord up`, `down`, `status`, `config`: the stack and what runs on it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from concord.output import ago, table
from shared.config import Settings, describe


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from concord import stack

    print(f"concord up: CONCORD_HOME={settings.home}", flush=True)
    report = stack.up(settings)
    for name in report.already:
        print(f"  {name}: already running")
    for name in report.started:
        print(f"  {name}: started")
    print(f"  topic {settings.topic}: {'created' if report.topic_created else 'exists'}")
    print(f"  Kafka {settings.bootstrap_servers}, Trino {settings.trino_endpoint} "
          f"(catalog {settings.catalog}); healthy after {report.seconds:.1f}s")
    if not report.started:
        print("concord up: everything was already up")
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    from concord import demo, stack

    stopped = [*demo.stop(settings), *stack.down(settings)]
    if not stopped:
        print("concord down: nothing was running (no live pid files under "
              f"{settings.run_dir})")
    else:
        print(f"concord down: stopped {', '.join(stopped)}")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from concord import stack
    from concord.status import layer_status

    rows = stack.status(settings)
    layers = layer_status(settings, kafka_up=all(
        r["healthy"] for r in rows if r["component"] == "kafka"))
    if args.json:
        print(json.dumps({"components": rows, "layers": layers}, indent=2, default=str))
    else:
        print(table(
            [[r["component"], r["pid"] or "-", r["endpoint"],
              "healthy" if r["healthy"] else "DOWN", r["version"] or "-", r["rss_mb"] or "-"]
             for r in rows],
            ["component", "pid", "endpoint", "health", "version", "rss MB"],
        ))
        print()
        for line in layer_lines(layers):
            print(line)
    return 0 if all(r["healthy"] for r in rows) else 1


def layer_lines(layers: dict[str, Any]) -> list[str]:
    """concord.status.layer_status as one line per layer (per view for serving)."""
    def lag(part: dict[str, Any]) -> str:
        return f"Kafka lag {part['kafka_lag']:,} messages" if "kafka_lag" in part else \
            "Kafka lag unknown"

    out = []
    if "kafka_error" in layers:
        out.append(f"kafka: {layers['kafka_error']}")
    speed = layers["speed"]
    if "error" in speed:
        out.append(f"speed:   cannot tell: {speed['error']}")
    else:
        state = f"running (pid {speed['pid']})" if speed["running"] else "NOT RUNNING"
        out.append(f"speed:   {state}; {lag(speed)}; last checkpoint "
                   f"{ago(speed['checkpoint_age_s'])}; {speed['rejects_last_5m']:,} messages "
                   "rejected in the last 5 min")
    batch = layers["batch"]
    if "error" in batch:
        out.append(f"batch:   cannot tell: {batch['error']}")
    elif batch["last_ingest_run"] is None:
        out.append(f"batch:   no ingest run yet; {lag(batch)}")
    else:
        rate = batch.get("last_run_reject_rate")
        what = ("no messages" if rate is None else
                f"{batch['last_run_records']:,} messages, {rate:.2%} rejected or duplicate")
        out.append(f"batch:   last ingest run {batch['last_ingest_run']} "
                   f"{ago(batch['last_ingest_age_s'])} ({what}); {lag(batch)}")
    serving = layers["serving"]
    if "error" in serving:
        out.append(f"serving: cannot tell: {serving['error']}")
    else:
        for name, v in serving["views"].items():
            where = (f"boundary {v['boundary']} ({ago(v['boundary_age_s']).replace(' ago', '')}"
                     " behind now)" if v["boundary"] else "no boundary yet (speed rows only)")
            out.append(f"serving: {name}: {where}")
    return out


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    values = settings.model_dump()
    rows = [[var, values[var.removeprefix("CONCORD_").lower()], desc]
            for var, _, desc in describe()]
    print(table(rows, ["variable", "effective value", "meaning"]))
    return 0
