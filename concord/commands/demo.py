"""`concord demo` and `concord smoke`: the platform shown live, and proven in one pass."""

from __future__ import annotations

import argparse

from shared.config import Settings


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from concord import demo
    from serving_layer.refresh import serving_views

    every = args.every or settings.batch_every_s
    demo.start(settings, rate=args.rate, every_s=every)
    print(demo.INSTRUCTIONS.format(
        kafka=settings.bootstrap_servers, topic=settings.topic, rate=args.rate,
        every=every, trino=settings.trino_endpoint, dashboard_port=settings.dashboard_port,
        views=", ".join(serving_views(settings)),
        monitoring=(f"Prometheus           {settings.prometheus_url} (targets, alerts; "
                    f"the exporter at http://127.0.0.1:{settings.metrics_port}/metrics)"
                    if settings.monitoring else "monitoring           off (CONCORD_MONITORING=0)"),
        logs=settings.log_dir, concord=demo.concord_command()))
    return 0


def cmd_smoke(settings: Settings, args: argparse.Namespace) -> int:
    from concord.smoke import run_smoke

    return 0 if run_smoke(settings, messages=args.messages) else 1
