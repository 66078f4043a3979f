"""`concord reconcile`: the speed and batch layers compared where both are complete."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from shared.config import Settings
from shared.views import VIEWS


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from batch_layer.run import repeat
    from serving_layer.reconcile import Reconciler

    Reconciler.check_range(args.from_, args.to)
    if args.delay:
        time.sleep(args.delay)
    outcome = [0]

    def once() -> None:
        outcome[0] = _reconcile_once(settings, args)

    repeat(once, args.every,
           on_pause=lambda s: print(f"reconcile: next in {s:.0f}s", flush=True),
           on_error=lambda exc: print(f"reconcile: failed ({exc}); trying again next time",
                                      flush=True))
    return outcome[0]


def _reconcile_once(settings: Settings, args: argparse.Namespace) -> int:
    from serving_layer.reconcile import Reconciler
    from serving_layer.refresh import refresh
    from shared.runstate import RECONCILE, write_state

    refresh(settings)  # every table registered, so the comparison sees all of them
    views = [VIEWS[args.view]] if args.view else list(VIEWS.values())
    report = Reconciler(settings).run(views, args.from_, args.to)
    # The last result, for `concord status` and the exporter (the reconcile alert).
    write_state(settings, RECONCILE, {
        "at": time.time(), "views": [v.name for v in views],
        "from": args.from_, "to": args.to, "windows_compared": report.windows_compared,
        "windows_equal": report.windows_equal, "unexplained": report.unexplained})
    if args.json:
        print(report.as_json(), flush=True)
        return 1 if report.unexplained else 0
    if args.every:
        print(f"reconcile: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", flush=True)
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
          f"{report.unexplained:,} unexplained", flush=True)
    return 1 if report.unexplained else 0
