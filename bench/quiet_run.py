"""`concord batch run` on a quiet stream: seconds per run in the batch loop's session.

The demo runs `concord batch run --every 180` in one process (one Spark session) next to
the speed job. This starts a private stack, ingests a first backlog (`--backlog`,
untimed figure printed), then `--runs` times sends `--new` messages and times one
`BatchRun.run()` (ingest, recompute of the touched windows of every view, boundary
publish, speed-table maintenance), printing the ingest's steps. Target (issue 13): <= 15 s.

    .venv/bin/python -m bench.quiet_run [--backlog 100000] [--new 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import time

from batch_layer.run import BatchRun
from harness.stack import private_stack
from infra.engines import spark_session
from producers.market import Market, MarketConfig
from producers.produce import ProduceReport, produce


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with private_stack(spark_driver_memory="2g") as settings:
        # Event time as on a quiet stream: `--new` trades in each 3 minutes (each run
        # recomputes the windows they fall into, as in the demo).
        messages = Market(MarketConfig(seed=5, trades_per_second=args.new / 180)).messages()

        def send(n: int) -> None:
            produce(settings, ((m.key, m.value) for m in itertools.islice(messages, n)),
                    report=ProduceReport(), progress=None)

        send(args.backlog)
        spark = spark_session(settings, "bench-quiet-run")
        try:
            t0 = time.monotonic()
            BatchRun(settings, spark).run()
            print(f"first run ({args.backlog:,} messages, cold session): "
                  f"{time.monotonic() - t0:.1f}s", flush=True)
            times = []
            for _ in range(args.runs):
                send(args.new)
                t0 = time.monotonic()
                result = BatchRun(settings, spark).run()
                times.append(time.monotonic() - t0)
                steps = "; ".join(", ".join(f"{k} {v:.1f}s" for k, v in r.phases.items())
                                  for r in result.ingest)
                run_steps = ", ".join(f"{k} {v:.1f}s" for k, v in result.phases.items())
                print(f"quiet run ({args.new} new messages): {times[-1]:.1f}s ({run_steps}; "
                      f"ingest: {steps})", flush=True)
        finally:
            spark.stop()
    best = min(times)
    print(f"quiet batch run: best {best:.1f}s, last {times[-1]:.1f}s of {len(times)}; "
          f"target <= 15 s: {'met' if best <= 15 else 'not met'}")


if __name__ == "__main__":
    main()
