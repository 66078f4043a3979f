"""`concord`: the command line of the platform.

Every command reads the one typed configuration (`CONCORD_*` variables, see
`concord config`). Errors are one clear message and a non-zero exit, never a
stack trace, unless CONCORD_DEBUG=1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from shared.config import Settings, describe, load_settings


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
    from infra.services import down

    stopped = down(settings)
    if not stopped:
        print("concord down: nothing was running (no live pid files under "
              f"{settings.run_dir})")
    else:
        print(f"concord down: stopped {', '.join(stopped)}")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from infra.services import status

    rows = status(settings)
    if args.json:
        print(json.dumps({"components": rows}, indent=2))
    else:
        print(_table(
            [[r["component"], r["pid"] or "-", r["endpoint"],
              "healthy" if r["healthy"] else "DOWN", r["version"] or "-", r["rss_mb"] or "-"]
             for r in rows],
            ["component", "pid", "endpoint", "health", "version", "rss MB"],
        ))
    return 0 if all(r["healthy"] for r in rows) else 1


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    values = settings.model_dump()
    rows = [[var, values[var.removeprefix("CONCORD_").lower()], desc]
            for var, _, desc in describe()]
    print(_table(rows, ["variable", "effective value", "meaning"]))
    return 0


def cmd_query(settings: Settings, args: argparse.Namespace) -> int:
    from serving_layer.trino import connect

    with connect(settings) as conn:
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


def cmd_serve_refresh(settings: Settings, args: argparse.Namespace) -> int:
    from serving_layer.refresh import refresh

    for line in refresh(settings):
        print(f"  {line}")
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
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    serve = add("serve", lambda s, a: 2, "serving layer")
    serve_sub = serve.add_subparsers(dest="serve_command", required=True)
    add("refresh", cmd_serve_refresh, "register the lake's tables in Trino", serve_sub)
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


if __name__ == "__main__":
    sys.exit(main())
