"""`concord demo` and `concord smoke`: the platform shown live, and proven in one pass."""

from __future__ import annotations

import argparse

from shared.config import Settings


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from concord import demo
    from serving_layer.refresh import serving_views

    demo.start(settings, rate=args.rate, every_s=args.every)
    print(demo.INSTRUCTIONS.format(
        kafka=settings.bootstrap_servers, topic=settings.topic, rate=args.rate,
        every=args.every, trino=settings.trino_endpoint, dashboard_port=settings.dashboard_port,
        views=", ".join(serving_views(settings)),
        logs=settings.log_dir, concord=demo.concord_command()))
    return 0


def cmd_smoke(settings: Settings, args: argparse.Namespace) -> int:
    from concord.smoke import run_smoke

    return 0 if run_smoke(settings, messages=args.messages) else 1
