"""`concord produce`: trades into Kafka, generated or from a file."""

from __future__ import annotations

import argparse
import sys

from shared.config import Settings


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from producers.market import MarketConfig
    from producers.produce import (
        ProduceReport,
        from_lines,
        generated,
        produce,
        stream_count,
        stream_seed,
    )

    report = ProduceReport()
    if args.file is not None:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with stream:
            produce(settings, from_lines(stream, args.format, report), topic=args.topic,
                    rate=args.rate, report=report)
    else:
        if args.format != "concord":
            raise ValueError("--format applies to --file input; the generator speaks concord")
        seed = stream_seed(args.seed, live=args.live)
        if args.live and args.seed is None:
            print(f"produce: live stream, seed {seed}", file=sys.stderr)
        config = MarketConfig(
            seed=seed, jitter_ms=args.jitter_ms, late_fraction=args.late_fraction,
            duplicate_fraction=args.duplicate_fraction,
            malformed_fraction=args.malformed_fraction,
        )
        produce(settings, generated(config, count=stream_count(args.count,
                                                               duration_s=args.duration),
                                    duration_s=args.duration, live=args.live),
                topic=args.topic, rate=args.rate, report=report)
    print(f"produce: {report.sent:,} sent, {report.acked:,} acknowledged, "
          f"{report.errors} failed, in {report.seconds:.1f}s ({report.rate:,.0f} msg/s)"
          + (f"; {report.unmapped} lines not in {args.format} format sent verbatim"
             if report.unmapped else ""))
    for sample in report.error_samples:
        print(f"  error: {sample}", file=sys.stderr)
    return 0 if report.errors == 0 and report.acked == report.sent else 1
