"""`concord`: the command line of the platform: the parser, and the one way errors end.

Every command reads the one typed configuration (`CONCORD_*` variables, see
`concord config`); the commands themselves are concord.commands, one module per group.
Errors are one clear message and a non-zero exit, never a stack trace, unless
CONCORD_DEBUG=1: a misuse (bad argument, bad time range) exits 2 before anything starts;
a command whose service is down (Trino, Kafka: concord.probes) says which and how to
bring it up, and exits 1, before it starts any work; any other failure exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from concord.commands.batch import cmd_batch_ingest, cmd_batch_recompute, cmd_batch_run
from concord.commands.demo import cmd_demo, cmd_smoke
from concord.commands.produce import cmd_produce
from concord.commands.reconcile import cmd_reconcile
from concord.commands.serving import cmd_dashboard, cmd_query, cmd_serve_refresh, cmd_sql
from concord.commands.speed import cmd_speed
from concord.commands.stack import cmd_config, cmd_down, cmd_status, cmd_up
from concord.demo import DEMO_RATE
from concord.probes import first_problem
from infra.security import ROLES
from shared.config import Settings, describe, load_settings
from shared.views import VIEWS

VIEW_NAMES = tuple(VIEWS)


def _utc(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-22T10:00 or 2026-11-22T10:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _number(kind: Callable[[str], float], *, low: float, strict: bool = True,
            high: float | None = None) -> Callable[[str], Any]:
    """An argparse type: a `kind` number above `low` (at least, unless `strict`), at most
    `high`."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value != value or (value <= low if strict else value < low) or (
                high is not None and value > high):
            bound = f"{'above' if strict else 'at least'} {low:g}"
            if high is not None:
                bound += f" and at most {high:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {bound}")
        return value
    return parse


POSITIVE = _number(float, low=0)
POSITIVE_INT = _number(int, low=0)
COUNT = _number(int, low=0, strict=False)
FRACTION = _number(float, low=0, strict=False, high=1)
PORT = _number(int, low=0, high=65535)


class Parser(argparse.ArgumentParser):
    """A misuse is one line, naming the command and where its usage is, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` shows the usage)\n")


def build_parser() -> argparse.ArgumentParser:
    env_help = "\n".join(f"  {var:<28} {desc}" for var, _, desc in describe())
    parser = Parser(
        prog="concord",
        description="Concord: Lambda-architecture platform for crypto market data.",
        epilog="configuration (environment variables):\n" + env_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[Settings, argparse.Namespace], int], help_: str,
            parent: Any = sub, needs: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        """A command; `needs`: the services ("trino", "kafka") probed before it runs."""
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn, needs=needs, parser=p)
        return p

    add("up", cmd_up, "start Kafka and Trino locally, create the topic and the schemas")
    add("down", cmd_down, "stop what `concord up` started")
    p = add("status", cmd_status, "health of each component")
    p.add_argument("--json", action="store_true", help="one JSON object")
    add("config", cmd_config, "effective configuration and its CONCORD_* variables")
    p = add("query", cmd_query, "run one SQL statement on Trino (catalog lake)",
            needs=("trino",))
    p.add_argument("sql")
    p.add_argument("--user", choices=ROLES, help="Trino user (default: CONCORD_TRINO_USER)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p = add("dashboard", cmd_dashboard, "the trading desk's live page: candlesticks of "
            "serving.bars_1m, last prices, spread, freshness, boundary")
    p.add_argument("--port", type=PORT, help="port on 127.0.0.1 (default CONCORD_DASHBOARD_PORT, "
                   "8050)")
    p.add_argument("--user", choices=ROLES, default="desk", help="Trino role it reads as")
    p.add_argument("--refresh-s", type=POSITIVE, default=1.0,
                   help="the server refreshes every book from Trino at most this often "
                   "(default 1)")
    p.add_argument("--no-live", dest="live_feed", action="store_false",
                   help="do not follow the speed job's partials topic: the current bar and "
                   "the board then move with Trino's refreshes only")
    p = add("sql", cmd_sql, "the Trino CLI on catalog lake, as CONCORD_TRINO_USER (HTTPS, "
            "password from $CONCORD_HOME/secrets/trino-users.json)", needs=("trino",))
    p.add_argument("--user", choices=ROLES, help="Trino user (default: CONCORD_TRINO_USER)")
    p.add_argument("--schema", default="serving", help="default schema (default: serving)")
    p.add_argument("--execute", metavar="SQL", help="run SQL and exit (default: interactive)")
    p.add_argument("--output-format", default="ALIGNED",
                   help="with --execute: ALIGNED, CSV_HEADER, JSON, ... (the CLI's formats)")
    serve = add("serve", lambda s, a: 2, "serving layer")
    serve_sub = serve.add_subparsers(dest="serve_command", required=True)
    add("refresh", cmd_serve_refresh, "register the lake's tables in Trino", serve_sub,
        needs=("trino",))
    p = add("produce", cmd_produce,
            "send trades to Kafka: generated (default), or one message per line of a file",
            needs=("kafka",))
    src = p.add_argument_group("input")
    src.add_argument("--file", metavar="PATH|-", help="lines to send; - reads stdin")
    src.add_argument("--format", choices=["concord", "binance", "coinbase"], default="concord",
                     help="format of --file lines (exchange formats are adapted)")
    gen = p.add_argument_group("generator")
    gen.add_argument("--rate", type=POSITIVE, help="messages per second (default: as fast as "
                     "possible)")
    gen.add_argument("--duration", type=POSITIVE, help="seconds to run")
    gen.add_argument("--count", type=POSITIVE_INT, help="messages to send (default 10000 unless "
                     "--duration)")
    gen.add_argument("--seed", type=int, help="generator seed (default 42; with --live, "
                     "from the clock, so a new stream never repeats an earlier one's ids)")
    gen.add_argument("--live", action="store_true",
                     help="event times follow the wall clock (a live market); needs --rate")
    gen.add_argument("--jitter-ms", type=COUNT, default=0, help="out-of-order event-time jitter")
    gen.add_argument("--late-fraction", type=FRACTION, default=0.0)
    gen.add_argument("--duplicate-fraction", type=FRACTION, default=0.0)
    gen.add_argument("--malformed-fraction", type=FRACTION, default=0.0)
    p.add_argument("--topic", help="topic (default: CONCORD_TOPIC)")
    speed = add("speed", lambda s, a: 2, "speed layer (the Flink job)")
    speed_sub = speed.add_subparsers(dest="speed_command", required=True)
    p = add("start", cmd_speed, "start the speed job detached (resumes from its last "
            "checkpoint)", speed_sub, needs=("kafka",))
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
            "Kafka -> lake.raw.trades / lake.raw.rejects, exactly once", batch_sub,
            needs=("kafka",))
    p.add_argument("--topic", help="topic (default: CONCORD_TOPIC)")
    p.add_argument("--max-per-partition", type=POSITIVE_INT, default=None,
                   help="messages per partition in one run (long backlogs go in runs; "
                   "default 2,500,000)")
    p = add("run", cmd_batch_run,
            "ingest, recompute the windows new trades touched, advance the boundaries",
            batch_sub, needs=("kafka",))
    p.add_argument("--topic", help="topic (default: CONCORD_TOPIC)")
    p.add_argument("--every", type=POSITIVE, metavar="SECONDS",
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
            "serving views; `concord down` stops it all", needs=("kafka", "trino"))
    p.add_argument("--rate", type=POSITIVE_INT, default=DEMO_RATE,
                   help="trades per second of the stream")
    p.add_argument("--every", type=POSITIVE_INT,
                   help="seconds between batch runs (default CONCORD_BATCH_EVERY_S, 180)")
    p = add("reconcile", cmd_reconcile,
            "compare merged speed rows with batch rows on every window both cover; explain "
            "each difference (exit 1 if any is unexplained)", needs=("trino",))
    p.add_argument("--view", choices=sorted(VIEW_NAMES), help="one view (default: all)")
    p.add_argument("--from", dest="from_", type=_utc, metavar="TIME",
                   help="compare windows from this time on (ISO 8601, UTC by default)")
    p.add_argument("--to", type=_utc, metavar="TIME", help="compare windows before this time")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: windows_compared, windows_equal, unexplained, "
                   "differences")
    p.add_argument("--every", type=POSITIVE, metavar="SECONDS",
                   help="again every SECONDS, until stopped (the demo: every 10 min); the "
                   "last result is what `concord status` and Prometheus show")
    p.add_argument("--delay", type=POSITIVE, metavar="SECONDS",
                   help="wait this long before the first comparison")
    p = add("smoke", cmd_smoke,
            "prove the stack end to end: Kafka -> Spark -> Delta -> Trino, checked by an oracle",
            needs=("kafka", "trino"))
    p.add_argument("--messages", type=POSITIVE_INT, default=10_000)
    return parser


def check(args: argparse.Namespace) -> None:
    """What argparse cannot check alone; a misuse exits 2 before anything starts."""
    parser: argparse.ArgumentParser = args.parser
    start, end = getattr(args, "from_", None), getattr(args, "to", None)
    if start is not None and end is not None and end <= start:
        parser.error(f"--to ({end:%Y-%m-%dT%H:%M:%S%z}) must be after --from "
                     f"({start:%Y-%m-%dT%H:%M:%S%z})")
    if getattr(args, "live", False) and not getattr(args, "rate", None):
        parser.error("--live needs --rate (messages per second)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check(args)
    debug = False
    try:
        settings = load_settings()
        debug = settings.debug
        if (problem := first_problem(settings, args.needs)) is not None:
            print(f"concord {args.command}: {problem}", file=sys.stderr)
            return 1
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
