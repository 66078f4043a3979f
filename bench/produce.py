"""Generator -> Kafka throughput, kafka-python and confluent-kafka side by side.

Same messages (one seed), same broker, same settings (acks=all, idempotent), one
fresh 4-partition topic per client. Prints messages/s for the generator alone and
for each client. Target (issue 3): >= 100k messages/s.

    .venv/bin/python -m bench.produce [--messages 1000000]
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid

from harness.stack import private_stack
from infra.kafka import ensure_topic
from producers.market import Market, MarketConfig
from producers.produce import ProduceReport, produce

CONFIG = MarketConfig(seed=7, jitter_ms=500, late_fraction=0.01, duplicate_fraction=0.01,
                      malformed_fraction=0.01)


def records(n: int) -> list[tuple[bytes | None, bytes]]:
    return [(m.key, m.value) for m in itertools.islice(Market(CONFIG).messages(), n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.messages

    t0 = time.monotonic()
    for _ in itertools.islice(Market(CONFIG).messages(), n):
        pass
    gen_s = time.monotonic() - t0
    print(f"generator alone: {n / gen_s:,.0f} msg/s ({n:,} messages)", flush=True)

    with private_stack() as settings:
        for client in ("kafka-python", "confluent-kafka"):
            topic = f"bench-{client}-{uuid.uuid4().hex[:6]}"
            ensure_topic(settings, topic, 4)
            stream = (r for m in itertools.islice(Market(CONFIG).messages(), n)
                      for r in [(m.key, m.value)])
            report = produce(settings, stream, topic=topic, client=client,
                             report=ProduceReport(), progress=None)
            print(f"generator -> Kafka with {client}: {report.rate:,.0f} msg/s "
                  f"({report.acked:,}/{report.sent:,} acknowledged, {report.errors} errors, "
                  f"{report.seconds:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
