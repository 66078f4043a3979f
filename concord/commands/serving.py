"""`concord query`, `sql`, `dashboard`, `serve refresh`: reading the serving layer."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys

from concord.output import table
from shared.config import Settings


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
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
    else:
        print(table(rows, header))
    return 0


def cmd_sql(settings: Settings, args: argparse.Namespace) -> int:
    """The Trino CLI on catalog `lake`, as CONCORD_TRINO_USER (or --user), over HTTPS."""
    from infra.services import trino_cli

    cmd, env = trino_cli(settings, user=args.user or settings.trino_user, schema=args.schema,
                         execute=args.execute, output_format=args.output_format)
    return subprocess.run(cmd, env=env, check=False).returncode


def cmd_dashboard(settings: Settings, args: argparse.Namespace) -> int:
    from serving_layer.dashboard import serve

    port = args.port or settings.dashboard_port
    server = serve(settings, port=port, user=args.user, refresh_s=args.refresh_s,
                   live=args.live_feed)
    live = "; the current bar follows the speed job's partials topic" if args.live_feed else ""
    print(f"dashboard: http://127.0.0.1:{port}/ (Trino as {args.user}{live}; Ctrl-C stops "
          "it)", flush=True)
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
