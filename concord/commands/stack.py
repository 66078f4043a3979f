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
    if settings.monitoring:
        print(f"  Prometheus {settings.prometheus_url} (targets, alerts), the exporter "
              f"http://127.0.0.1:{settings.metrics_port}/metrics")
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
    healthy = {r["component"]: r["healthy"] for r in rows}
    layers = layer_status(settings, kafka_up=healthy["kafka"], trino_up=healthy["trino"])
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
        for line in [*layer_lines(layers), *monitoring_lines(rows)]:
            print(line)
    return 0 if all(r["healthy"] for r in rows) else 1


def monitoring_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Where Prometheus is, its targets' health and the alerts pending or firing."""
    prom = next((r for r in rows if r["component"] == "prometheus"), None)
    if prom is None:
        return ["monitoring: off (CONCORD_MONITORING=0)"]
    if not prom["healthy"]:
        return [f"monitoring: Prometheus is not answering at {prom['endpoint']}: "
                "run `concord up`"]
    targets = prom.get("targets", {})
    down = sorted(job for job, health in targets.items() if health != "up")
    out = [f"monitoring: Prometheus {prom['endpoint']}: {len(targets) - len(down)} of "
           f"{len(targets)} targets up" + (f" (down: {', '.join(down)})" if down else "")]
    alerts = prom.get("alerts", [])
    if not alerts:
        out.append("monitoring: no alert pending or firing")
    for alert in alerts:
        out.append(f"monitoring: {alert['state'].upper()} {alert['name']}: {alert['summary']}")
    return out


def layer_lines(layers: dict[str, Any]) -> list[str]:
    """concord.status.layer_status as one line per layer (per view for serving)."""
    def lag(part: dict[str, Any]) -> str:
        if "kafka_lag" not in part:
            return "Kafka lag unknown"
        return (f"Kafka lag {part['kafka_lag']:,} messages"
                + (f" ({part['kafka_lag_s']:.1f}s)" if part.get("kafka_lag_s") else ""))

    out = []
    if "kafka_error" in layers:
        out.append(f"kafka: {layers['kafka_error']}")
    speed = layers["speed"]
    if "error" in speed:
        out.append(f"speed:   cannot tell: {speed['error']}")
    else:
        state = f"running (pid {speed['pid']})" if speed["running"] else "NOT RUNNING"
        reasons = speed.get("rejects_last_5m_by_reason", {})
        out.append(f"speed:   {state}; {lag(speed)}; last checkpoint "
                   f"{ago(speed['checkpoint_age_s'])}; {speed['rejects_last_5m']:,} messages "
                   "rejected in the last 5 min"
                   + (f" ({', '.join(f'{k} {v:,}' for k, v in reasons.items())})"
                      if reasons else ""))
        for table, c in speed.get("committers", {}).items():
            mean = c["seconds"] / c["commits"] if c["commits"] else 0.0
            out.append(f"speed:   committer {table}: {c['commits']:,} commits, "
                       f"{c['records']:,} records, {mean * 1000:.0f} ms per commit on average")
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
    if "loop" in batch:
        loop = batch["loop"]
        state = "running" if batch.get("loop_running") else "NOT RUNNING"
        last = ("no run finished yet" if loop.get("duration_s") is None else
                f"last run {'ok' if loop['ok'] else 'FAILED'} in {loop['duration_s']:.0f}s, "
                f"{ago(loop.get('last_run_age_s'))}"
                + ("" if loop["ok"] else f": {loop.get('error')}"))
        out.append(f"batch:   loop {state}, every {loop['every_s']:.0f}s; {last}")
    serving = layers["serving"]
    if "error" in serving:
        out.append(f"serving: cannot tell: {serving['error']}")
    else:
        for name, v in serving["views"].items():
            where = (f"boundary {v['boundary']} ({ago(v['boundary_age_s']).replace(' ago', '')}"
                     " behind now)" if v["boundary"] else "no boundary yet (speed rows only)")
            out.append(f"serving: {name}: {where}")
        if "freshness_s" in serving:
            fresh = serving["freshness_s"]
            out.append("serving: freshness: " + ("no trade in serving.ticker yet" if fresh is None
                                                  else f"newest trade {ago(fresh)}"))
        else:
            out.append(f"serving: freshness unknown: {serving.get('freshness_error')}")
        if "reconcile" in serving:
            r = serving["reconcile"]
            out.append(f"serving: last reconcile {ago(r['age_s'])}: {r['windows_compared']:,} "
                       f"windows compared, {r['unexplained']:,} unexplained")
    tables = layers.get("tables", {})
    if "error" in tables:
        out.append(f"tables:  cannot tell: {tables['error']}")
    for name, t in tables.items() if "error" not in tables else ():
        entries = "" if t["log_entries"] is None else f", {t['log_entries']:,} log entries"
        out.append(f"tables:  {name}: {t['files']:,} files{entries}")
    return out


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    values = settings.model_dump()
    rows = [[var, values[var.removeprefix("CONCORD_").lower()], desc]
            for var, _, desc in describe()]
    print(table(rows, ["variable", "effective value", "meaning"]))
    return 0
