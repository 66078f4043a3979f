"""Batch ingest throughput: Kafka -> lake.raw.trades / raw.rejects, for growing backlogs.

For each size: a fresh topic gets N generated messages (1% malformed, 1% duplicates),
then one `Ingest.run()` lands them; prints messages/s of the ingest alone. Target
(issue 3): >= 100k messages/s. Runs on a private stack (free ports, temp home).

    .venv/bin/python -m bench.ingest [--sizes 1000000,10000000]
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid

from batch_layer.ingest import Ingest
from harness.stack import private_stack
from infra.engines import spark_session
from infra.kafka import ensure_topic
from producers.market import Market, MarketConfig
from producers.produce import ProduceReport, produce

CONFIG = MarketConfig(seed=11, jitter_ms=500, late_fraction=0.01, duplicate_fraction=0.01,
                      malformed_fraction=0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    with private_stack(spark_driver_memory="2g") as settings:
        spark = spark_session(settings, "bench-ingest")
        try:
            for n in sizes:
                topic = f"bench-ingest-{uuid.uuid4().hex[:6]}"
                ensure_topic(settings, topic, 4)
                stream = ((m.key, m.value) for m in itertools.islice(Market(CONFIG).messages(), n))
                report = produce(settings, stream, topic=topic, report=ProduceReport(),
                                 progress=None)
                print(f"{n:,} messages produced at {report.rate:,.0f} msg/s", flush=True)
                lake = settings.model_copy(update={"lake_uri": f"{settings.lake}-{topic}"})
                t0 = time.monotonic()
                runs = Ingest(lake, spark, topic=topic).run()
                seconds = time.monotonic() - t0
                consumed = sum(r.records for r in runs)
                accepted = sum(c.accepted for r in runs for c in r.partitions.values())
                print(f"ingest {consumed:,} messages ({accepted:,} accepted) in {seconds:.1f}s: "
                      f"{consumed / seconds:,.0f} msg/s, {len(runs)} run(s), balanced="
                      f"{all(r.balanced for r in runs)}", flush=True)
                for r in runs:
                    steps = ", ".join(f"{k} {v:.1f}s" for k, v in r.phases.items())
                    print(f"  run {r.run_id}: {steps}", flush=True)
        finally:
            spark.stop()


if __name__ == "__main__":
    main()
