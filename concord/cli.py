"""`concord`: the command line of the platform.

Every command reads the one typed configuration (`CONCORD_*` variables, see
`concord config`). Errors are one clear message and a non-zero exit, never a
stack trace, unless CONCORD_DEBUG=1.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from infra.demo import BATCH_EVERY_S, DEMO_RATE
from infra.security import ROLES
from shared.config import Settings, describe, load_settings
from shared.views import VIEWS as _VIEWS

VIEW_NAMES = tuple(_VIEWS)


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(h) for h in header]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from infra.services import up

    print(f"concord up: CONCORD_HOME={settings.home}", flush=True)
    report = up(settings)
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
    from infra import demo
    from infra.services import down

    stopped = [*demo.stop(settings), *down(settings)]
    if not stopped:
        print("concord down: nothing was running (no live pid files under "
              f"{settings.run_dir})")
    else:
        print(f"concord down: stopped {', '.join(stopped)}")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from infra.layers import layer_status
    from infra.services import status

    rows = status(settings)
    layers = layer_status(settings, kafka_up=all(
        r["healthy"] for r in rows if r["component"] == "kafka"))
    if args.json:
        print(json.dumps({"components": rows, "layers": layers}, indent=2, default=str))
    else:
        print(_table(
            [[r["component"], r["pid"] or "-", r["endpoint"],
              "healthy" if r["healthy"] else "DOWN", r["version"] or "-", r["rss_mb"] or "-"]
             for r in rows],
            ["component", "pid", "endpoint", "health", "version", "rss MB"],
        ))
        print()
        for line in _layer_lines(layers):
            print(line)
    return 0 if all(r["healthy"] for r in rows) else 1


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes
            else f"{seconds:.1f}s") + " ago"


def _layer_lines(layers: dict[str, Any]) -> list[str]:
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
                   f"{_ago(speed['checkpoint_age_s'])}; {speed['rejects_last_5m']:,} messages "
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
                   f"{_ago(batch['last_ingest_age_s'])} ({what}); {lag(batch)}")
    serving = layers["serving"]
    if "error" in serving:
        out.append(f"serving: cannot tell: {serving['error']}")
    else:
        for name, v in serving["views"].items():
            where = (f"boundary {v['boundary']} ({_ago(v['boundary_age_s']).replace(' ago', '')}"
                     " behind now)" if v["boundary"] else "no boundary yet (speed rows only)")
            out.append(f"serving: {name}: {where}")
    return out


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    values = settings.model_dump()
    rows = [[var, values[var.removeprefix("CONCORD_").lower()], desc]
            for var, _, desc in describe()]
    print(_table(rows, ["variable", "effective value", "meaning"]))
    return 0


def cmd_query(settings: Settings, args: argparse.Namespace) -> int:
    from serving_layer.trino import connect

    with connect(settings, user=args.user) as conn:
        cur = conn.cursor()
        cur.execute(args.sql)
        rows = cur.fetchall()
        header = [d[0] for d in cur.description or []]
    if args.format == "json":
        print(json.dumps([dict(zip(header, r, strict=True)) for r in rows], default=str))
    elif args.format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
    else:
        print(_table(rows, header))
    return 0


def cmd_sql(settings: Settings, args: argparse.Namespace) -> int:
    """The Trino CLI on catalog `lake`, as CONCORD_TRINO_USER (or --user), over HTTPS."""
    from infra.artifacts import trino_cli_jar
    from infra.java import java_for_trino
    from infra.security import cert_file, password

    user = args.user or settings.trino_user
    cmd = [str(java_for_trino(settings).java), "-jar", str(trino_cli_jar(settings)),
           "--server", settings.trino_endpoint, "--user", user, "--password",
           "--catalog", settings.catalog, "--schema", args.schema]
    if settings.manages_trino:
        cmd += ["--truststore-path", str(cert_file(settings))]
    if args.execute:
        cmd += ["--execute", args.execute, "--output-format", args.output_format]
    # The CLI reads the password from TRINO_PASSWORD: never on the command line.
    env = {**os.environ, "TRINO_PASSWORD": password(settings, user)}
    return subprocess.run(cmd, env=env, check=False).returncode


def cmd_dashboard(settings: Settings, args: argparse.Namespace) -> int:
    from serving_layer.dashboard import serve

    port = args.port or settings.dashboard_port
    server = serve(settings, port=port, user=args.user, refresh_s=args.refresh_s)
    print(f"dashboard: http://127.0.0.1:{port}/ (Trino as {args.user}; Ctrl-C stops it)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_serve_refresh(settings: Settings, args: argparse.Namespace) -> int:
    from serving_layer.refresh import refresh

    for line in refresh(settings):
        print(f"  {line}")
    return 0


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from producers.market import MarketConfig
    from producers.produce import ProduceReport, from_lines, generated, produce

    report = ProduceReport()
    if args.file is not None:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        with stream:
            produce(settings, from_lines(stream, args.format, report), topic=args.topic,
                    rate=args.rate, report=report)
    else:
        if args.format != "concord":
            raise ValueError("--format applies to --file input; the generator speaks concord")
        # A live stream is seeded from the clock unless told otherwise: a restarted one
        # must not send the trade ids of an earlier one again (the batch layer would
        # rightly reject them all as duplicates).
        seed = args.seed if args.seed is not None else (
            time.time_ns() % 2**63 if args.live else 42)
        if args.live and args.seed is None:
            print(f"produce: live stream, seed {seed}", file=sys.stderr)
        config = MarketConfig(
            seed=seed, jitter_ms=args.jitter_ms, late_fraction=args.late_fraction,
            duplicate_fraction=args.duplicate_fraction,
            malformed_fraction=args.malformed_fraction,
        )
        count = args.count if args.count is not None else (
            None if args.duration else 10_000)
        if args.live and not args.rate:
            raise ValueError("--live needs --rate (messages per second)")
        produce(settings, generated(config, count=count, duration_s=args.duration,
                                    live=args.live),
                topic=args.topic, rate=args.rate, report=report)
    print(f"produce: {report.sent:,} sent, {report.acked:,} acknowledged, "
          f"{report.errors} failed, in {report.seconds:.1f}s ({report.rate:,.0f} msg/s)"
          + (f"; {report.unmapped} lines not in {args.format} format sent verbatim"
             if report.unmapped else ""))
    for sample in report.error_samples:
        print(f"  error: {sample}", file=sys.stderr)
    return 0 if report.errors == 0 and report.acked == report.sent else 1


def _utc(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-22T10:00 or 2026-11-22T10:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_batch_recompute(settings: Settings, args: argparse.Namespace) -> int:
    from batch_layer.recompute import Chunk, Recompute, align, chunks, preview
    from infra.engines import spark_session
    from shared.views import VIEWS

    views = [VIEWS[args.view]] if args.view else list(VIEWS.values())
    if args.dry_run:
        for view in views:
            p = preview(settings, view, args.from_, args.to)
            print(f"recompute {view.name} (dry run): {p.start:%Y-%m-%d %H:%M:%S} .. "
                  f"{p.end:%Y-%m-%d %H:%M:%S} UTC in {p.chunks} commit(s) would read "
                  f"{p.trades:,} trades from lake.raw.trades and replace {p.rows_now:,} rows "
                  f"({p.windows_now:,} windows) of lake.batch.{view.name}")
            if p.boundary is None:
                print("  no boundary published yet: the serving view shows speed rows only")
            elif p.end > p.boundary:
                print(f"  windows from the boundary {p.boundary:%Y-%m-%d %H:%M:%S} UTC on are "
                      "served from the speed layer until a batch run moves it past them")
        return 0
    spark = spark_session(settings, "concord-recompute")
    job = Recompute(settings, spark)
    try:
        for view in views:
            lo, hi = align(view, args.from_, args.to)
            total = len(chunks(view, lo, hi, job.chunk))
            done = itertools.count(1)

            def progress(chunk: Chunk, name: str = view.name, total: int = total,
                         done: Iterator[int] = done) -> None:
                print(f"  {name} [{next(done)}/{total}] {chunk.start:%Y-%m-%d %H:%M} .. "
                      f"{chunk.end:%Y-%m-%d %H:%M}: {chunk.windows:,} windows, "
                      f"{chunk.rows:,} rows from {chunk.trades:,} trades in "
                      f"{chunk.seconds:.1f}s", flush=True)

            print(f"recompute {view.name}: {lo:%Y-%m-%d %H:%M:%S} .. {hi:%Y-%m-%d %H:%M:%S} UTC "
                  f"(widened to whole {view.window_seconds}s windows)", flush=True)
            written = job.run(view, lo, hi, progress=progress)
            print(f"recompute {view.name}: {sum(c.windows for c in written):,} windows, "
                  f"{sum(c.rows for c in written):,} rows written to lake.batch.{view.name} "
                  f"from {sum(c.trades for c in written):,} trades")
    finally:
        spark.stop()
    return 0


def cmd_batch_run(settings: Settings, args: argparse.Namespace) -> int:
    from infra.engines import spark_session

    spark = spark_session(settings, "concord-batch-run")
    try:
        while True:
            started = time.monotonic()
            _batch_run_once(settings, spark, args.topic)
            if not args.every:
                return 0
            pause = max(0.0, args.every - (time.monotonic() - started))
            print(f"batch run: next run in {pause:.0f}s", flush=True)
            time.sleep(pause)
    finally:
        spark.stop()


def _batch_run_once(settings: Settings, spark: Any, topic: str | None) -> None:
    from batch_layer.ingest import IngestRun
    from batch_layer.recompute import Chunk
    from batch_layer.run import BatchRun

    def ingested(run: IngestRun) -> None:
        print(f"ingest run {run.run_id}: {run.records:,} messages in {run.seconds:.1f}s, "
              f"{sum(c.accepted for c in run.partitions.values()):,} accepted, "
              f"{sum(c.rejected for c in run.partitions.values()):,} rejected", flush=True)

    def recomputed(chunk: Chunk) -> None:
        print(f"  recompute {chunk.start:%Y-%m-%d %H:%M} .. {chunk.end:%H:%M}: "
              f"{chunk.windows:,} windows from {chunk.trades:,} trades", flush=True)

    print(f"batch run: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", flush=True)
    result = BatchRun(settings, spark, topic=topic).run(on_ingest=ingested,
                                                        on_chunk=recomputed)
    if not result.ingest:
        print("batch run: nothing new in Kafka")
    for v in result.views:
        if v.boundary is None:
            print(f"batch run: {v.view}: nothing to recompute")
            continue
        if v.boundary == v.previous:
            moved = "unchanged"
        else:
            before = f"{v.previous:%Y-%m-%d %H:%M:%S}" if v.previous else "none"
            moved = f"{before} -> {v.boundary:%Y-%m-%d %H:%M:%S} UTC"
        print(f"batch run: {v.view}: {v.windows:,} windows recomputed in {len(v.ranges)} "
              f"range(s); boundary {moved}")
    for m in result.maintained:
        print(f"batch run: {m.table}: {m.files_before:,} -> {m.files_after:,} files, "
              f"{m.rows_deleted:,} rows before the retention deleted, "
              f"{m.files_vacuumed:,} old files vacuumed", flush=True)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from infra import demo
    from serving_layer.refresh import serving_views

    demo.start(settings, rate=args.rate, every_s=args.every)
    print(demo.INSTRUCTIONS.format(
        kafka=settings.bootstrap_servers, topic=settings.topic, rate=args.rate,
        every=args.every, trino=settings.trino_endpoint, dashboard_port=settings.dashboard_port,
        views=", ".join(serving_views(settings)),
        logs=settings.log_dir, concord=demo.concord_command()))
    return 0


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from serving_layer.reconcile import Reconciler
    from serving_layer.refresh import refresh
    from shared.views import VIEWS

    if args.from_ is not None and args.to is not None and args.to <= args.from_:
        raise ValueError("--to must be after --from")
    refresh(settings)  # every table registered, so the comparison sees all of them
    views = [VIEWS[args.view]] if args.view else list(VIEWS.values())
    report = Reconciler(settings).run(views, args.from_, args.to)
    if args.json:
        print(report.as_json())
    else:
        for v in report.views:
            span = f"{v.start} .. {v.end}" if v.start else "nothing both layers cover yet"
            print(f"{v.view}: {span}: {v.windows_compared:,} windows compared, "
                  f"{v.windows_equal:,} equal"
                  + (f", {v.not_examined:,} more differences not examined (counted as "
                     "unexplained; narrow --from/--to)" if v.not_examined else ""))
        for d in report.differences:
            key = ", ".join(f"{k}={val}" for k, val in d.key.items())
            state = "explained" if d.explained else "UNEXPLAINED"
            print(f"  {d.view} {key} {d.window_start}: {state}: {'; '.join(d.causes)}")
            if not d.explained:
                print(f"    batch: {d.batch}\n    speed: {d.speed}")
        print(f"reconcile: {report.windows_compared:,} windows compared, "
              f"{report.windows_equal:,} equal, "
              f"{report.windows_compared - report.windows_equal:,} differ, "
              f"{report.unexplained:,} unexplained")
    return 1 if report.unexplained else 0


def cmd_speed(settings: Settings, args: argparse.Namespace) -> int:
    from speed_layer import control

    if args.speed_command == "start":
        print(control.start(settings, drop_unmatched_state=args.drop_unmatched_state))
    elif args.speed_command == "stop":
        print(control.stop(settings))
    else:
        info = control.status(settings)
        if args.json:
            print(json.dumps(info))
        else:
            for key, value in info.items():
                print(f"  {key}: {value}")
        return 0 if info["running"] else 1
    return 0


def cmd_batch_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from batch_layer.ingest import Ingest, IngestRun
    from infra.engines import spark_session

    spark = spark_session(settings, "concord-ingest")
    limit = {"max_records_per_partition": args.max_per_partition} if args.max_per_partition else {}
    ingest = Ingest(settings, spark, topic=args.topic, **limit)

    def progress(run: IngestRun) -> None:
        print(f"ingest run {run.run_id}{' (redo of an interrupted run)' if run.redo else ''}: "
              f"{run.records:,} messages in {run.seconds:.1f}s "
              f"({run.records / max(run.seconds, 1e-9):,.0f} msg/s; "
              + ", ".join(f"{k} {v:.1f}s" for k, v in run.phases.items()) + ")")
        for p, c in sorted(run.partitions.items()):
            flag = "" if c.balanced else "   <-- MISMATCH"
            print(f"  partition {p}: offsets {c.start}..{c.end}  consumed {c.records:,}  "
                  f"accepted {c.accepted:,}  rejected {c.rejected:,} "
                  f"(duplicates {c.duplicates:,}){flag}")

    runs = ingest.run(progress=progress)
    spark.stop()
    if not runs:
        print(f"ingest: nothing new on topic {ingest.topic}")
        return 0
    if not all(r.balanced for r in runs):
        print("ingest: accepted + rejected != consumed for some partition", file=sys.stderr)
        return 1
    total = sum(r.records for r in runs)
    print(f"ingest: {total:,} messages in {len(runs)} run(s); lake.raw.trades and "
          "lake.raw.rejects are up to date (`concord serve refresh` makes them visible)")
    return 0


def cmd_smoke(settings: Settings, args: argparse.Namespace) -> int:
    from infra.smoke import run_smoke

    return 0 if run_smoke(settings, messages=args.messages) else 1


def build_parser() -> argparse.ArgumentParser:
    env_help = "\n".join(f"  {var:<28} {desc}" for var, _, desc in describe())
    parser = argparse.ArgumentParser(
        prog="concord",
        description="Concord: Lambda-architecture platform for crypto market data.",
        epilog="configuration (environment variables):\n" + env_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[Settings, argparse.Namespace], int], help_: str,
            parent: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        return p

    add("up", cmd_up, "start Kafka and Trino locally, create the topic and the schemas")
    add("down", cmd_down, "stop what `concord up` started")
    p = add("status", cmd_status, "health of each component")
    p.add_argument("--json", action="store_true", help="one JSON object")
    add("config", cmd_config, "effective configuration and its CONCORD_* variables")
    p = add("query", cmd_query, "run one SQL statement on Trino (catalog lake)")
    p.add_argument("sql")
    p.add_argument("--user", choices=ROLES, help="Trino user (default: CONCORD_TRINO_USER)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p = add("dashboard", cmd_dashboard, "the trading desk's live page: candlesticks of "
            "serving.bars_1m, last prices, spread, freshness, boundary")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default CONCORD_DASHBOARD_PORT, "
                   "8050)")
    p.add_argument("--user", choices=ROLES, default="desk", help="Trino role it reads as")
    p.add_argument("--refresh-s", type=float, default=1.0,
                   help="the server queries Trino at most this often per book (default 1)")
    p = add("sql", cmd_sql, "the Trino CLI on catalog lake, as CONCORD_TRINO_USER (HTTPS, "
            "password from $CONCORD_HOME/secrets/trino-users.json)")
    p.add_argument("--user", choices=ROLES, help="Trino user (default: CONCORD_TRINO_USER)")
    p.add_argument("--schema", default="serving", help="default schema (default: serving)")
    p.add_argument("--execute", metavar="SQL", help="run SQL and exit (default: interactive)")
    p.add_argument("--output-format", default="ALIGNED",
                   help="with --execute: ALIGNED, CSV_HEADER, JSON, ... (the CLI's formats)")
    serve = add("serve", lambda s, a: 2, "serving layer")
    serve_sub = serve.add_subparsers(dest="serve_command", required=True)
    add("refresh", cmd_serve_refresh, "register the lake's tables in Trino", serve_sub)
    p = add("produce", cmd_produce,
            "send trades to Kafka: generated (default), or one message per line of a file")
    src = p.add_argument_group("input")
    src.add_argument("--file", metavar="PATH|-", help="lines to send; - reads stdin")
    src.add_argument("--format", choices=["concord", "binance", "coinbase"], default="concord",
                     help="format of --file lines (exchange formats are adapted)")
    gen = p.add_argument_group("generator")
    gen.add_argument("--rate", type=float, help="messages per second (default: as fast as "
                     "possible)")
    gen.add_argument("--duration", type=float, help="seconds to run")
    gen.add_argument("--count", type=int, help="messages to send (default 10000 unless "
                     "--duration)")
    gen.add_argument("--seed", type=int, help="generator seed (default 42; with --live, "
                     "from the clock, so a new stream never repeats an earlier one's ids)")
    gen.add_argument("--live", action="store_true",
                     help="event times follow the wall clock (a live market); needs --rate")
    gen.add_argument("--jitter-ms", type=int, default=0, help="out-of-order event-time jitter")
    gen.add_argument("--late-fraction", type=float, default=0.0)
    gen.add_argument("--duplicate-fraction", type=float, default=0.0)
    gen.add_argument("--malformed-fraction", type=float, default=0.0)
    p.add_argument("--topic", help="topic (default: CONCORD_TOPIC)")
    speed = add("speed", lambda s, a: 2, "speed layer (the Flink job)")
    speed_sub = speed.add_subparsers(dest="speed_command", required=True)
    p = add("start", cmd_speed, "start the speed job detached (resumes from its last "
            "checkpoint)", speed_sub)
    p.add_argument("--drop-unmatched-state", action="store_true",
                   help="after an upgrade changed the pipeline: restore what still matches "
                   "the newest checkpoint, start the rest empty")
    add("stop", cmd_speed, "stop the speed job (checkpoints are kept)", speed_sub)
    p = add("status", cmd_speed, "is the speed job running; its Flink job, last checkpoint",
            speed_sub)
    p.add_argument("--json", action="store_true")
    batch = add("batch", lambda s, a: 2, "batch layer")
    batch_sub = batch.add_subparsers(dest="batch_command", required=True)
    p = add("ingest", cmd_batch_ingest,
            "Kafka -> lake.raw.trades / lake.raw.rejects, exactly once", batch_sub)
    p.add_argument("--topic", help="topic (default: CONCORD_TOPIC)")
    p.add_argument("--max-per-partition", type=int, default=None,
                   help="messages per partition in one run (long backlogs go in runs; "
                   "default 2,500,000)")
    p = add("run", cmd_batch_run,
            "ingest, recompute the windows new trades touched, advance the boundaries",
            batch_sub)
    p.add_argument("--topic", help="topic (default: CONCORD_TOPIC)")
    p.add_argument("--every", type=float, metavar="SECONDS",
                   help="run again every SECONDS, until stopped (default: once)")
    p = add("recompute", cmd_batch_recompute,
            "rebuild lake.batch.<view> from lake.raw.trades for a time range (idempotent)",
            batch_sub)
    p.add_argument("--view", choices=sorted(VIEW_NAMES), help="one view (default: all)")
    p.add_argument("--from", dest="from_", type=_utc, required=True, metavar="TIME",
                   help="start, ISO 8601 (UTC unless an offset is given)")
    p.add_argument("--to", type=_utc, required=True, metavar="TIME", help="end (exclusive)")
    p.add_argument("--dry-run", action="store_true",
                   help="say what would be read and rewritten, write nothing (no Spark)")
    p = add("demo", cmd_demo, "live demo on a running stack: stream, speed job, batch loop, "
            "serving views; `concord down` stops it all")
    p.add_argument("--rate", type=int, default=DEMO_RATE, help="trades per second of the stream")
    p.add_argument("--every", type=int, default=BATCH_EVERY_S, help="seconds between batch runs")
    p = add("reconcile", cmd_reconcile,
            "compare merged speed rows with batch rows on every window both cover; explain "
            "each difference (exit 1 if any is unexplained)")
    p.add_argument("--view", choices=sorted(VIEW_NAMES), help="one view (default: all)")
    p.add_argument("--from", dest="from_", type=_utc, metavar="TIME",
                   help="compare windows from this time on (ISO 8601, UTC by default)")
    p.add_argument("--to", type=_utc, metavar="TIME", help="compare windows before this time")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: windows_compared, windows_equal, unexplained, "
                   "differences")
    p = add("smoke", cmd_smoke,
            "prove the stack end to end: Kafka -> Spark -> Delta -> Trino, checked by an oracle")
    p.add_argument("--messages", type=int, default=10_000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = False
    try:
        settings = load_settings()
        debug = settings.debug
        rc: int = args.fn(settings, args)
        return rc
    except KeyboardInterrupt:
        print("concord: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"concord {args.command}: error: {exc}", file=sys.stderr)
        return 1


def run() -> None:
    """The `concord` executable: main(), then exit without the interpreter's teardown.

    Arrow's and delta-rs's native thread pools can still be alive when Python tears
    itself down, and then abort the process ("terminate called without an active
    exception", exit 134) after the command has finished and printed (delta-io/delta-rs
    #2184; seen here with `concord status`, intermittently). Every command has released
    what it holds by now (Spark stopped, producers flushed), so: flush and leave.
    """
    import logging

    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()
