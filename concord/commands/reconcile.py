"""`concord reconcile`: the speed and batch layers compared where both are complete."""

from __future__ import annotations

import argparse

from shared.config import Settings
from shared.views import VIEWS


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from serving_layer.reconcile import Reconciler
    from serving_layer.refresh import refresh

    Reconciler.check_range(args.from_, args.to)
    refresh(settings)  # every table registered, so the comparison sees all of them
    views = [VIEWS[args.view]] if args.view else list(VIEWS.values())
    report = Reconciler(settings).run(views, args.from_, args.to)
    if args.json:
        print(report.as_json())
        return 1 if report.unexplained else 0
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
