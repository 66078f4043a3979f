"""The cluster profile end to end: the lambda path on the engines' own clusters, with a
Kafka broker and a Flink TaskManager killed mid-stream.

A private stack with CONCORD_PROFILE=cluster (infra.cluster: 3 KRaft brokers with
replication 3 and min.insync.replicas 2, a Spark standalone master and 2 workers, a
Flink session cluster of a JobManager and 2 TaskManagers, a Trino worker beside the
coordinator). The speed job runs on the Flink cluster at parallelism 2; a generated
stream with every contract case goes in; halfway, one broker and one TaskManager are
SIGKILLed (Flink restarts the job from its checkpoint on the slots left; producers and
consumers carry on with two brokers). After the stream a batch run on the Spark cluster
and a catch-up: every serving view equals DuckDB's computation over the accepted
trades, raw.trades holds each exactly once, and reconcile finds nothing unexplained.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

import pytest

from harness.stack import private_cluster_settings, running
from infra.cluster import (
    flink_jobs,
    flink_slots_in_use,
    flink_taskmanager_ids,
    flink_taskmanager_service,
)
from infra.kafka import brokers
from infra.services import kafka_service
from producers.market import Market, MarketConfig
from producers.produce import ProduceReport, produce
from serving_layer.reconcile import Reconciler
from serving_layer.refresh import refresh
from serving_layer.trino import query
from shared.config import Settings
from shared.views import VIEWS
from speed_layer import control
from tests.duckdb_oracle import duckdb_rows
from tests.oracle import accepted

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

CONFIG = MarketConfig(seed=41, jitter_ms=2000, late_fraction=0.02, duplicate_fraction=0.02,
                      malformed_fraction=0.02, trades_per_second=50)
HALF = 3000
CONCORD = str(Path(sys.executable).with_name("concord"))


def _raw_count(settings: Settings) -> int:
    return int(query(settings, "SELECT count(*) FROM lake.raw.trades")[0][0])


def test_lambda_path_on_the_clusters_survives_a_broker_and_a_taskmanager() -> None:
    with tempfile.TemporaryDirectory(prefix="concord-cluster-") as home:
        settings = private_cluster_settings(Path(home))
        with running(settings):
            assert len(brokers(settings)) == 3
            assert len(flink_taskmanager_ids(settings)) == 2
            messages = list(itertools.islice(Market(CONFIG).messages(), 2 * HALF))
            print(control.start(settings))
            (job,) = flink_jobs(settings)
            assert job["state"] == "RUNNING"
            produce(settings, ((m.key, m.value) for m in messages[:HALF]),
                    report=ProduceReport(), progress=None)

            # The job's two subtasks run one in each TaskManager (slots spread), so the
            # TaskManager killed below is one the job runs in.
            used = flink_slots_in_use(settings)
            assert sorted(used.values()) == [1, 1], used
            # One broker and one TaskManager die mid-stream.
            broker = kafka_service(settings, 2).pid()
            taskmanager = flink_taskmanager_service(settings, 2).pid()
            assert broker and taskmanager
            os.killpg(broker, signal.SIGKILL)
            os.killpg(taskmanager, signal.SIGKILL)
            report = ProduceReport()
            produce(settings, ((m.key, m.value) for m in messages[HALF:]), report=report,
                    progress=None)
            assert len(brokers(settings)) == 2

            trades = accepted(messages)
            env = {**os.environ, **settings.as_env()}
            done = subprocess.run([CONCORD, "batch", "run"], env=env, capture_output=True,
                                  text=True, timeout=1200, check=False)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            refresh(settings)  # the batch run's new tables registered in the metastore
            assert _raw_count(settings) == len(trades)

            # Every view equals DuckDB once the speed job (restarted by Flink from its
            # checkpoint on the TaskManager left) has caught up.
            deadline = time.monotonic() + 600
            for view in VIEWS.values():
                names = [m.name for m in view.measures]
                columns = ", ".join([*view.keys, "window_start", *names])
                want = duckdb_rows(trades, view.keys, view.window_seconds, names)
                while True:
                    served = {(*r[:len(view.keys)], r[len(view.keys)].replace(tzinfo=UTC)):
                              dict(zip(names, r[len(view.keys) + 1:], strict=True))
                              for r in query(settings,
                                             f"SELECT {columns} FROM lake.serving.{view.name}")}
                    if served == want or time.monotonic() > deadline:
                        break
                    time.sleep(5)
                assert served == want, view.name
            reconciled = Reconciler(settings).run(VIEWS.values())
            assert reconciled.windows_compared > 0 and reconciled.unexplained == 0, \
                reconciled.as_json()
            print(control.stop(settings))
            assert not flink_jobs(settings)
