"""Foundation benchmarks: setup time, stack start time, idle memory of each engine.

Prints its figures; targets (issue 2): `concord up` to healthy <= 90 s warm, whole
idle stack <= 6 GiB. Runs on a private CONCORD_HOME and free ports, so it does not
disturb a running demo.

    .venv/bin/python -m bench.foundation            # warm setup, up x2, idle memory
    .venv/bin/python -m bench.foundation --cold     # also a cold `make setup` (downloads)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from concord.stack import down, up
from harness.stack import private_stack
from infra.processes import rss_bytes
from infra.services import kafka_service, trino_service
from shared.config import REPO_ROOT

MiB = 2**20


def timed_setup(env: dict[str, str]) -> float:
    t0 = time.monotonic()
    subprocess.run(["bash", str(REPO_ROOT / "infra" / "bootstrap.sh")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def jvm_rss_of_children() -> int:
    """RSS of JVMs that are children of this process (Spark's and PyFlink's gateways)."""
    return rss_bytes(os.getpid()) - _own_rss()


def _own_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also time a cold make setup")
    args = parser.parse_args()

    if args.cold:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "CONCORD_ARTIFACTS": f"{tmp}/artifacts",
                "MAVEN_OPTS": f"-Dmaven.repo.local={tmp}/m2",
            }
            print(f"setup cold (JVM side: empty Maven repo and artifacts): "
                  f"{timed_setup(env):.1f} s", flush=True)
    print(f"setup warm (everything present): {timed_setup(dict(os.environ)):.1f} s", flush=True)

    with private_stack(start=False) as settings:
        try:
            report = up(settings)
            print(f"concord up, fresh home, to healthy: {report.seconds:.1f} s", flush=True)
            down(settings)
            report = up(settings)
            print(f"concord up, restart with data, to healthy: {report.seconds:.1f} s",
                  flush=True)
            time.sleep(20)  # let the JVMs settle into idle
            kafka_pid = kafka_service(settings).pid()
            trino_pid = trino_service(settings).pid()
            assert kafka_pid and trino_pid
            kafka_mb = rss_bytes(kafka_pid) / MiB
            trino_mb = rss_bytes(trino_pid) / MiB

            from infra.engines import flink_table_env, spark_session

            base = jvm_rss_of_children()
            spark = spark_session(settings, "bench-idle")
            spark.range(10).count()
            time.sleep(5)
            spark_mb = (jvm_rss_of_children() - base) / MiB
            base = jvm_rss_of_children()
            t_env = flink_table_env(settings)
            t_env.execute_sql("SELECT 1").collect().close()
            time.sleep(5)
            flink_mb = (jvm_rss_of_children() - base) / MiB
            spark.stop()
            total = kafka_mb + trino_mb + spark_mb + flink_mb
            print(f"idle RSS: kafka {kafka_mb:.0f} MiB, trino {trino_mb:.0f} MiB, "
                  f"spark driver {spark_mb:.0f} MiB, flink (PyFlink JVM) {flink_mb:.0f} MiB; "
                  f"total {total:.0f} MiB ({total / 1024:.2f} GiB; target <= 6 GiB)")
        finally:
            down(settings)


if __name__ == "__main__":
    main()
