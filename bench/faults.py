"""Faults, measured (issue 15): every process killed mid-stream, nothing lost, nothing
counted twice.

On a private stack, the demo's moving parts run as an operator runs them: the speed job
(`concord speed start`), the batch loop (`concord batch run --every N`) and a live
generated stream (`concord produce --live`: out-of-order, late, duplicate and malformed
messages mixed in). A seeded schedule then SIGKILLs, one at a time, `--per-kind` times
each (10 by default):

  speed      the speed job's whole process group (Flink JVM, Python workers, committer)
  committer  only the speed job's Python process (its Delta committer); the Flink JVM it
             started is left as an orphan, as a crash of that process would leave it
  batch      the batch loop during its ingest, recompute, boundary publish or speed-table
             maintenance (rotating), by the progress line that phase prints
  kafka      the broker
  trino      the Trino server
  producer   `concord produce` mid-stream

and recovers as the README tells an operator: `concord speed start`, the next `concord
batch run`, `concord up`, or a new producer. Between faults the bench also sends
duplicates of messages older than the speed layer's dedupe horizon, Kafka records with a
null value, a null or odd key and headers, and valid trades with such keys.

After the schedule the stream stops, one more batch run catches up, and the bench reads
the whole topic back. Its oracle labels every record from the generator's own intent
(each producer's seeded sequence, regenerated here; the first occurrence of a trade in
Kafka order wins; plain `decimal`), independent of the contract code under test, and
checks: each producer's records form, per partition, a gap-free prefix of what it
generated, none twice (`produce` reported no more than that as acknowledged); raw.trades
holds exactly the oracle's trades at their Kafka coordinates; raw.rejects every other
record with a reason (`duplicate` for the repeats); serving.bars_1m equals the oracle
window by window; `concord reconcile` finds nothing unexplained. Printed: faults per
kind, recovered, recovery time p50/max, duplicates, losses.

    python -m bench.faults                 # 10 of each kind (~40 min)
    python -m bench.faults --per-kind 2    # the CI version's size
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from deltalake import DeltaTable

from harness.stack import private_stack
from infra import kafka
from infra.processes import group_members
from infra.services import kafka_service, trino_service
from producers.market import Market, MarketConfig, Message
from serving_layer.trino import query
from shared.config import Settings
from shared.contract import Trade
from shared.views import BARS_1M
from speed_layer import control
from speed_layer.job import GROUP_ID
from tests.oracle import view_rows

KINDS = ("speed", "committer", "batch", "kafka", "trino", "producer")
BATCH_PHASES = ("ingest", "recompute", "publish", "maintain")
PHASE_LINES = {"ingest": "batch run: 20", "recompute": "  recompute ",
               "publish": "batch run: publishing", "maintain": "batch run: maintaining"}
MARK = "concord-bench"  # header of the records the bench itself injects
CONCORD = str(Path(sys.executable).with_name("concord"))
STREAM: dict[str, Any] = {"jitter_ms": 1500, "late_fraction": 0.005,
                          "duplicate_fraction": 0.01, "malformed_fraction": 0.01}


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


@dataclass
class Fault:
    kind: str
    detail: str
    at: float
    recovered_s: float | None = None
    note: str = ""
    problem: str = ""  # what went wrong beyond the fault itself (fails the benchmark)


@dataclass
class Injected:
    """A record the bench sent itself, and what the layers must make of it."""

    copy_of: tuple[int, int] | None = None  # a far duplicate of this (partition, offset)
    trade: Trade | None = None  # a valid trade (with an odd key or headers)
    hostile: str = ""  # what is odd about a record that must be rejected


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _wait_gone(pid)


def _wait_gone(pid: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.05)


class Bench:
    """The run on `settings` (CONCORD_HOME, lake, topic of the platform's processes);
    `servers`: the settings Kafka and Trino were started with, when another home's (a
    test session's stack), else `settings`."""

    def __init__(self, settings: Settings, args: argparse.Namespace,
                 servers: Settings | None = None) -> None:
        self.settings = settings
        self.servers = servers or settings
        self.args = args
        self.rng = random.Random(args.seed)
        self.env = {**os.environ, **settings.as_env()}
        self.logs = settings.home / "bench"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.producers: list[tuple[int, subprocess.Popen[bytes], Path]] = []
        self.loop: subprocess.Popen[bytes] | None = None
        self.loop_log = self.logs / "batch-0.log"
        self.injected: dict[int, Injected] = {}
        self.faults: list[Fault] = []
        self.unplanned: list[str] = []  # deaths no fault caused
        self.sender = kafka.confluent_producer(settings, **{"linger.ms": 5})

    # --- the moving parts -----------------------------------------------------------------

    def concord(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        """A `concord` command on the bench's settings; `up` on the servers' (their home
        holds their pid files, data and configuration)."""
        env = {**os.environ, **self.servers.as_env()} if args == ("up",) else self.env
        done = subprocess.run([CONCORD, *args], env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"concord {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done

    def start_producer(self) -> None:
        seed = self.args.seed * 1000 + len(self.producers)
        log = self.logs / f"produce-{len(self.producers)}.log"
        cmd = [CONCORD, "produce", "--live", "--seed", str(seed), "--rate", str(self.args.rate),
               "--duration", str(7 * 86_400)] + [
            a for k, v in STREAM.items() for a in (f"--{k.replace('_', '-')}", str(v))]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.producers.append((seed, proc, log))

    def start_loop(self) -> None:
        self.loop_log = self.logs / f"batch-{len(list(self.logs.glob('batch-*.log')))}.log"
        with self.loop_log.open("wb") as out:
            self.loop = subprocess.Popen(
                [CONCORD, "batch", "run", "--every", str(self.args.batch_every)], env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop_loop(self) -> None:
        if self.loop is not None and self.loop.poll() is None:
            os.killpg(self.loop.pid, signal.SIGTERM)
            self.loop.wait(timeout=120)

    def loop_lines(self) -> list[str]:
        return self.loop_log.read_text(errors="replace").splitlines()

    def speed_version(self) -> int:
        """The speed committer's last committed partials offset (-1: none yet)."""
        try:
            table = DeltaTable(self.settings.table_uri("speed", BARS_1M.name))
            version = table.transaction_version(f"{GROUP_ID}/partials/{BARS_1M.name}/0")
            return -1 if version is None else int(version)
        except Exception:  # noqa: BLE001 - not there yet, or being rewritten: not moved
            return -1

    def wait_speed_moves(self, since: int, timeout_s: float = 600) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.speed_version() > since:
                return True
            time.sleep(0.25)
        return False

    def wait_for_line(self, text: str, after: int, timeout_s: float) -> int | None:
        """Index of the first line of the batch loop's log from `after` on starting with
        `text`, waiting up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lines = self.loop_lines()
            for i in range(after, len(lines)):
                if lines[i].startswith(text):
                    return i
            if self.loop is not None and self.loop.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    # --- the faults -------------------------------------------------------------------------

    def inject(self, kind: str, n: int) -> Fault:
        self.check_unplanned()
        t0 = time.monotonic()
        fault = Fault(kind, "", t0)
        getattr(self, f"_fault_{kind}")(fault, n)
        return fault

    def check_unplanned(self) -> None:
        """A speed job or batch loop that died with no fault injected is a failure of the
        benchmark: recorded with its log's last error lines (kept in the bench folder),
        then restarted so that the schedule goes on."""
        if not control.status(self.settings)["running"]:
            log = control.service(self.settings).log_file
            kept = self.logs / f"speed-died-{len(self.unplanned)}.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            kept.write_text(text)
            errors = [ln for ln in text.splitlines()[-400:]
                      if "Error" in ln or "Exception" in ln or "ended" in ln][-3:]
            self.unplanned.append(f"speed job found dead at {datetime.now(UTC):%H:%M:%S} "
                                  f"(log kept in {kept}): " + " | ".join(errors)[:600])
            say(f"UNPLANNED: {self.unplanned[-1]}")
            self.concord("speed", "start")
        if self.loop is not None and self.loop.poll() is not None:
            self.unplanned.append(f"batch loop found dead (exit {self.loop.returncode}, log "
                                  f"{self.loop_log})")
            say(f"UNPLANNED: {self.unplanned[-1]}")
            self.start_loop()

    def _fault_speed(self, fault: Fault, _n: int) -> None:
        before = self.speed_version()
        pid = control.status(self.settings)["pid"]
        if pid is None:
            raise RuntimeError("the speed job is not running before its fault")
        _kill_group(pid)
        fault.at = time.monotonic()
        fault.detail = f"pid {pid} and its group"
        self._restart_speed(fault, before)

    def _fault_committer(self, fault: Fault, _n: int) -> None:
        before = self.speed_version()
        pid = control.status(self.settings)["pid"]
        if pid is None:
            raise RuntimeError("the speed job is not running before its fault")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        fault.at = time.monotonic()
        time.sleep(2)  # what the orphaned Flink JVM does meanwhile
        orphans = group_members(pid)
        fault.detail = f"pid {pid} only; {len(orphans)} orphan(s) of its group after 2 s"
        self._restart_speed(fault, before)
        left = group_members(pid)
        if left:
            fault.problem = f"{len(left)} process(es) of the killed job still run after restart"

    def _restart_speed(self, fault: Fault, before: int) -> None:
        self.concord("speed", "start")
        if self.wait_speed_moves(before):
            fault.recovered_s = time.monotonic() - fault.at

    def _fault_batch(self, fault: Fault, n: int) -> None:
        phase = BATCH_PHASES[n % len(BATCH_PHASES)]
        assert self.loop is not None
        start = len(self.loop_lines())
        # A run that is in that phase: the loop's next run, or (a quiet run skips the
        # recompute) the one after.
        found = None
        for _ in range(3):
            found = self.wait_for_line(PHASE_LINES[phase], start,
                                       self.args.batch_every * 2 + 600)
            if found is not None:
                break
        if phase == "ingest":
            time.sleep(self.rng.uniform(0.5, 4))  # inside the Spark ingest
        os.killpg(self.loop.pid, signal.SIGKILL)
        self.loop.wait()
        fault.at = time.monotonic()
        fault.detail = (f"during {phase}" if found is not None
                        else f"({phase} not seen: loop {self.loop.returncode})")
        self.start_loop()
        done = self.wait_for_line("batch run: done", 0, self.args.batch_every * 2 + 900)
        if done is not None:
            fault.recovered_s = time.monotonic() - fault.at

    def _fault_kafka(self, fault: Fault, _n: int) -> None:
        before = self.speed_version()
        pid = kafka_service(self.servers).pid()
        if pid is None:
            raise RuntimeError("Kafka is not running before its fault")
        time.sleep(self.rng.uniform(0, 2))
        _kill_group(pid)
        fault.at = time.monotonic()
        fault.detail = f"broker pid {pid}"
        time.sleep(self.rng.uniform(1, 5))  # down for a moment, as a crash would be
        self.concord("up")
        # The speed job is expected to ride it out; if it did not, start it again.
        if not control.status(self.settings)["running"]:
            fault.note = "speed job died with the broker; restarted"
            self.concord("speed", "start")
        if self.wait_speed_moves(before):
            fault.recovered_s = time.monotonic() - fault.at

    def _fault_trino(self, fault: Fault, _n: int) -> None:
        pid = trino_service(self.servers).pid()
        if pid is None:
            raise RuntimeError("Trino is not running before its fault")
        _kill_group(pid)
        fault.at = time.monotonic()
        fault.detail = f"server pid {pid}"
        self.concord("up")
        query(self.settings, f"SELECT count(*) FROM {self.settings.catalog}.serving.bars_1m")
        fault.recovered_s = time.monotonic() - fault.at

    def _fault_producer(self, fault: Fault, _n: int) -> None:
        _, proc, log = self.producers[-1]
        time.sleep(self.rng.uniform(0, 1))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        fault.at = time.monotonic()
        acked = _acked(log)
        fault.detail = f"after it reported {acked:,} acknowledged"
        ends = sum(kafka.end_offsets(self.settings, self.settings.topic).values())
        self.start_producer()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if sum(kafka.end_offsets(self.settings, self.settings.topic).values()) > ends:
                fault.recovered_s = time.monotonic() - fault.at
                return
            time.sleep(0.1)

    # --- what the bench sends itself ---------------------------------------------------------

    def send(self, key: bytes | None, value: bytes | None, what: Injected) -> None:
        n = len(self.injected)
        self.injected[n] = what
        self.sender.produce(self.settings.topic, key=key, value=value,
                            headers=[(MARK, str(n).encode()), ("trace", b"\x00\xff")])

    def far_duplicates(self, count: int) -> int:
        """Re-send `count` messages first sent more than twice the dedupe horizon ago."""
        horizon_ms = 2000 * self.settings.speed_dedupe_horizon_s
        begin, end = kafka.offset_range(self.settings, self.settings.topic)
        from confluent_kafka import TopicPartition

        consumer = kafka.confluent_consumer(self.settings, **{"group.id": "bench-faults"})
        now_ms = time.time() * 1000
        sent = 0
        try:
            # Per partition, the first offset sent after the cut-off: copy from before it.
            cut = consumer.offsets_for_times(
                [TopicPartition(self.settings.topic, p, int(now_ms - horizon_ms)) for p in end],
                timeout=10)
            for tp in cut:
                p, old = tp.partition, (tp.offset if tp.offset >= 0 else end[tp.partition])
                if sent >= count or old - begin[p] < 1:
                    continue
                consumer.assign([TopicPartition(self.settings.topic, p,
                                                begin[p] + self.rng.randrange(old - begin[p]))])
                for msg in consumer.consume(20, timeout=10):
                    if msg.error() or msg.headers() or msg.value() is None:
                        continue
                    if now_ms - msg.timestamp()[1] < horizon_ms:
                        break
                    self.send(msg.key(), msg.value(), Injected(copy_of=(p, int(msg.offset() or 0))))
                    sent += 1
                    if sent >= count:
                        break
        finally:
            consumer.close()
        self.sender.flush(30)
        return sent

    def odd_records(self) -> None:
        n = len(self.injected)
        now = int(time.time() * 1000)
        for key, tag in ((None, "null key"), (b"\x00\xfe\xff", "binary key"),
                         (b"k" * 5000, "5 kB key"), (b"kraken:ETH-USDT", "a key of another book")):
            trade = Trade("binance", "BTC-USDT", f"bench-{self.args.seed}-{n}-{tag[:4]}",
                          Decimal("64000.5"), Decimal("0.01000000"), "sell", now)
            value = (f'{{"exchange":"{trade.exchange}","symbol":"{trade.symbol}",'
                     f'"trade_id":"{trade.trade_id}","price":"64000.5","qty":"0.01",'
                     f'"side":"sell","ts":{now}}}').encode()
            self.send(key, value, Injected(trade=trade))
            self.send(key, None, Injected(hostile=f"null value, {tag}"))
            self.send(key, b"\x00" * 10 + b"\xff", Injected(hostile=f"binary value, {tag}"))
        self.sender.flush(30)

    # --- the run ------------------------------------------------------------------------------

    def run(self) -> Report:
        args = self.args
        say(f"stack up at {self.settings.home}; starting the speed job, the batch loop "
            f"(every {args.batch_every}s) and a live stream at {args.rate} msg/s")
        kafka.ensure_topic(self.settings, self.settings.topic, self.settings.topic_partitions)
        self.concord("serve", "refresh")
        self.concord("speed", "start")
        self.start_producer()
        self.start_loop()
        if self.wait_for_line("batch run: done", 0, 900) is None:
            raise RuntimeError("the batch loop never completed a run:\n"
                               + "\n".join(self.loop_lines()[-30:]))
        if not self.wait_speed_moves(-1):
            raise RuntimeError("the speed job never committed")
        schedule = [k for k in args.kinds for _ in range(args.per_kind)]
        self.rng.shuffle(schedule)
        counts: Counter[str] = Counter()
        for i, kind in enumerate(schedule):
            time.sleep(self.rng.uniform(*args.pause))
            fault = self.inject(kind, counts[kind])
            fault.detail += f", at {datetime.now(UTC):%H:%M:%S}"
            counts[kind] += 1
            self.faults.append(fault)
            took = "not recovered" if fault.recovered_s is None else \
                f"recovered in {fault.recovered_s:.1f}s"
            say(f"fault {i + 1}/{len(schedule)}: {kind} ({fault.detail}): {took}"
                + (f"; {fault.note}" if fault.note else "")
                + (f"; PROBLEM: {fault.problem}" if fault.problem else ""))
            if i % 3 == 0:
                self.odd_records()
            if i % 3 == 1:
                say(f"  sent {self.far_duplicates(10)} duplicates older than twice the "
                    f"dedupe horizon ({self.settings.speed_dedupe_horizon_s}s)")
        self.check_unplanned()
        return self.finish()

    def finish(self) -> Report:
        say("schedule done: stopping the stream, catching up")
        _, proc, log = self.producers[-1]
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=180)
        self.stop_loop()
        self.sender.flush(30)
        if not control.status(self.settings)["running"]:
            self.concord("speed", "start")
        t0 = time.monotonic()
        self.concord("batch", "run", timeout_s=1800)
        say(f"final batch run: {time.monotonic() - t0:.0f}s; reading the topic back")
        records = read_topic(self.settings)
        oracle = Oracle(self.producers, self.injected, records)
        report = Report(self.faults, oracle, unplanned=self.unplanned)
        report.check_lake(self.settings)
        report.check_serving(self.settings, timeout_s=600)
        done = subprocess.run([CONCORD, "reconcile", "--json"], env=self.env,
                              capture_output=True, text=True, timeout=900, check=False)
        try:
            report.reconcile = json.loads(done.stdout)
        except ValueError:
            report.reconcile = {"error": (done.stdout + done.stderr)[-500:]}
        return report

    def stop(self) -> None:
        for _, proc, _ in self.producers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.loop is not None and self.loop.poll() is None:
            os.killpg(self.loop.pid, signal.SIGKILL)
            self.loop.wait()


def _acked(log: Path) -> int:
    """What a `concord produce` reported acknowledged last (its progress lines)."""
    acked = 0
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("produce: sent") and " acked " in line:
            acked = int(line.split(" acked ")[1].split()[0].replace(",", ""))
        elif line.startswith("produce: ") and " acknowledged" in line:
            acked = int(line.split(" sent, ")[1].split()[0].replace(",", ""))
    return acked


# --- reading back and the oracle ---------------------------------------------------------------

# partition, offset, key, value, headers
Record = tuple[int, int, bytes | None, bytes | None, dict[str, bytes]]


def read_topic(settings: Settings) -> dict[int, list[Record]]:
    from confluent_kafka import TopicPartition

    begin, end = kafka.offset_range(settings, settings.topic)
    consumer = kafka.confluent_consumer(settings, **{"group.id": "bench-faults-oracle"})
    out: dict[int, list[Record]] = {p: [] for p in end}
    try:
        consumer.assign([TopicPartition(settings.topic, p, begin[p]) for p in end])
        remaining = {p for p in end if end[p] > begin[p]}
        while remaining:
            for msg in consumer.consume(10_000, timeout=5):
                if msg.error():
                    continue
                p, off = int(msg.partition() or 0), int(msg.offset() or 0)
                headers: dict[str, bytes] = {}
                pairs = cast("list[tuple[str, bytes | str | None]]", msg.headers() or [])
                for name, raw in pairs:
                    headers[str(name)] = raw if isinstance(raw, bytes) else str(raw or "").encode()
                out[p].append((p, off, msg.key(), msg.value(), headers))
                if off >= end[p] - 1:
                    remaining.discard(p)
    finally:
        consumer.close()
    return out


def _normal(value: bytes) -> bytes:
    """A generated message's bytes without its event time (which a live stream sets as it
    sends): what identifies it in Kafka."""
    head, sep, _ = value.rpartition(b'"ts":')
    return head if sep else value


class Oracle:
    """Every record of the topic labelled from the generators' intent (each producer's
    seeded sequence regenerated) and the bench's own injections; then the trades the
    lake must hold: the first occurrence of each (exchange, symbol, trade_id)."""

    def __init__(self, producers: list[tuple[int, Any, Path]], injected: dict[int, Injected],
                 records: dict[int, list[Record]]) -> None:
        self.records = records
        self.problems: list[str] = []
        self.per_producer: list[int] = [0] * len(producers)
        self.acked = [_acked(log) for _, _, log in producers]
        key_part = {r[2]: p for p, recs in records.items() for r in recs if r[2] is not None
                    and not r[4]}
        queues: list[dict[int, deque[Message]]] = [defaultdict(deque) for _ in producers]
        streams = [_stream(seed) for seed, _, _ in producers]
        labels: dict[tuple[int, int], Message | Injected] = {}
        for p, recs in records.items():
            k = 0
            for _, off, _key, value, headers in recs:
                if MARK in headers:
                    labels[(p, off)] = injected[int(headers[MARK])]
                    continue
                norm = _normal(value) if value is not None else None
                matched = False
                while k < len(producers) and not matched:
                    nxt = _peek(queues[k], streams[k], key_part, p)
                    if nxt is not None and _normal(nxt.value) == norm:
                        labels[(p, off)] = queues[k][p].popleft()
                        self.per_producer[k] += 1
                        matched = True
                    elif k + 1 < len(producers) and (
                            (first := _peek(queues[k + 1], streams[k + 1], key_part, p))
                            is not None and _normal(first.value) == norm):
                        k += 1
                    else:
                        break
                if not matched:
                    self.problems.append(f"partition {p} offset {off}: not the next message "
                                         "of any producer (a duplicate by a retry, or a gap)")
        # The trades: first occurrence wins, in Kafka order (one book, one partition).
        self.trades: dict[tuple[int, int], Trade] = {}
        self.rejected: dict[tuple[int, int], str] = {}  # coordinates -> "duplicate"/"malformed"
        seen: set[tuple[str, str, str]] = set()
        for p, recs in records.items():
            for _, off, _key, value, _ in recs:
                trade = self._trade(labels, (p, off), value)
                if trade is None:
                    self.rejected[(p, off)] = "malformed"
                elif (trade.exchange, trade.symbol, trade.trade_id) in seen:
                    self.rejected[(p, off)] = "duplicate"
                else:
                    seen.add((trade.exchange, trade.symbol, trade.trade_id))
                    self.trades[(p, off)] = trade

    def _trade(self, labels: dict[tuple[int, int], Message | Injected], at: tuple[int, int],
               value: bytes | None) -> Trade | None:
        label = labels.get(at)
        if isinstance(label, Injected):
            if label.copy_of is not None:
                return self._trade(labels, label.copy_of, value)
            return label.trade
        if label is None or label.fields is None or value is None:
            return None
        ex, sym, tid, pu, qu, side, _ = label.fields
        ts = int(value.rpartition(b'"ts":')[2].rstrip(b"}"))
        return Trade(ex, sym, tid, Decimal(pu).scaleb(-8), Decimal(qu).scaleb(-8), side, ts)


def _stream(seed: int) -> Iterator[Message]:
    return Market(MarketConfig(seed=seed, **STREAM)).messages()


def _peek(queues: dict[int, deque[Message]], stream: Iterator[Message],
          key_part: dict[bytes, int], p: int, lookahead: int = 200_000) -> Message | None:
    """The next message the producer sent to partition `p` (generating as needed)."""
    for _ in range(lookahead):
        if queues[p]:
            return queues[p][0]
        msg = next(stream)
        part = key_part.get(msg.key) if msg.key is not None else None
        if part is not None:
            queues[part].append(msg)
    return None


def _where(settings: Settings, missing: list[tuple[int, int]]) -> list[str]:
    """Missing (partition, offset)s as contiguous ranges, each with the ingest runs of
    lake.meta.ingest_runs whose offset range holds it (status, records read of the range):
    where to look when a record is in Kafka and in neither raw table."""
    from shared.bookkeeping import ingest_ledger

    if not missing:
        return []  # nothing to place: the ledger is not read
    spans: list[list[int]] = []
    for p, o in missing:
        if spans and spans[-1][0] == p and spans[-1][2] == o - 1:
            spans[-1][2] = o
        else:
            spans.append([p, o, o])
    ledger = ingest_ledger(settings, settings.topic)
    out = []
    for p, lo, hi in spans:
        runs = [f"run {r['run_id']} {r['status']} [{r['start_offset']}, {r['end_offset']}) "
                f"read {r['records']}" for r in sorted(ledger, key=lambda r: r["run_id"])
                if r["kafka_partition"] == p and r["start_offset"] <= hi
                and r["end_offset"] > lo]
        out.append(f"p{p} offsets {lo}..{hi} ({hi - lo + 1}): " + ("; ".join(runs) or
                                                                   "in no ingest run"))
    return out


@dataclass
class Report:
    faults: list[Fault]
    oracle: Oracle
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    rejects_missing: int = 0
    rejects_wrong: int = 0
    serving_diff: list[str] = field(default_factory=list)
    serving_windows: int = 0
    unplanned: list[str] = field(default_factory=list)
    reconcile: dict[str, Any] = field(default_factory=dict)
    lost_where: list[str] = field(default_factory=list)  # where missing records lie

    def check_lake(self, settings: Settings) -> None:
        raw = DeltaTable(settings.table_uri("raw", "trades")).to_pyarrow_table(
            columns=["kafka_partition", "kafka_offset", "exchange", "symbol", "trade_id",
                     "price", "qty", "side", "ts"]).to_pylist()
        got: Counter[tuple[int, int]] = Counter()
        for r in raw:
            at = (r["kafka_partition"], r["kafka_offset"])
            got[at] += 1
            want = self.oracle.trades.get(at)
            ts = r["ts"]
            ts_ms = ts if isinstance(ts, int) else int(ts.replace(tzinfo=UTC).timestamp() * 1000)
            if want is None or (r["exchange"], r["symbol"], r["trade_id"], r["price"], r["qty"],
                                r["side"], ts_ms) != (want.exchange, want.symbol, want.trade_id,
                                                      want.price, want.qty, want.side, want.ts):
                self.wrong += 1
        self.duplicated = sum(n - 1 for n in got.values() if n > 1)
        missing = sorted(at for at in self.oracle.trades if at not in got)
        self.lost = len(missing)
        self.lost_where = _where(settings, missing)
        rejects = DeltaTable(settings.table_uri("raw", "rejects")).to_pyarrow_table(
            columns=["kafka_partition", "kafka_offset", "reason"]).to_pylist()
        reasons = {(r["kafka_partition"], r["kafka_offset"]): r["reason"] for r in rejects}
        missing = sorted(at for at in self.oracle.rejected if at not in reasons)
        self.rejects_missing = len(missing)
        self.lost_where += _where(settings, missing)
        self.rejects_wrong = sum(
            1 for at, why in self.oracle.rejected.items() if at in reasons
            and (reasons[at] == "duplicate") != (why == "duplicate")) + sum(
            1 for at in reasons if at not in self.oracle.rejected)

    def check_serving(self, settings: Settings, timeout_s: float) -> None:
        names = [m.name for m in BARS_1M.measures]
        expected = view_rows(self.oracle.trades.values(), BARS_1M.keys, BARS_1M.window_seconds,
                             names)
        self.serving_windows = len(expected)
        cols = ", ".join([*BARS_1M.keys, "window_start", *names])
        deadline = time.monotonic() + timeout_s
        while True:
            rows = query(settings, f"SELECT {cols} FROM {settings.catalog}.serving.bars_1m")
            n = len(BARS_1M.keys)
            served = {(*r[:n], r[n].replace(tzinfo=UTC)):
                      dict(zip(names, r[n + 1:], strict=True)) for r in rows}
            diff = [f"{k} served {served.get(k, {}).get('trade_count')} trades, expected "
                    f"{expected.get(k, {}).get('trade_count')}"
                    for k in sorted(served.keys() | expected.keys())
                    if served.get(k) != expected.get(k)]
            self.serving_diff = diff
            if not diff or time.monotonic() >= deadline:
                return
            time.sleep(5)  # the speed job may still be taking in the stream's tail

    @property
    def unexplained(self) -> int:
        return int(self.reconcile.get("unexplained", -1))

    def ok(self) -> bool:
        return (not self.oracle.problems and not self.unplanned and self.lost == 0
                and self.duplicated == 0
                and self.wrong == 0 and self.rejects_missing == 0 and self.rejects_wrong == 0
                and not self.serving_diff and self.unexplained == 0
                and all(f.recovered_s is not None and not f.problem for f in self.faults)
                and all(n >= a for n, a in zip(self.oracle.per_producer, self.oracle.acked,
                                               strict=True)))

    def lines(self) -> list[str]:
        out = ["kind        injected  recovered  recovery p50  max    what recovered means"]
        means = {"speed": "`concord speed start`, new partials committed",
                 "committer": "`concord speed start`, new partials committed",
                 "batch": "the next run of a new loop done",
                 "kafka": "`concord up`, new partials committed",
                 "trino": "`concord up`, serving query answered",
                 "producer": "a new producer's first message in Kafka"}
        by_kind: dict[str, list[Fault]] = defaultdict(list)
        for f in self.faults:
            by_kind[f.kind].append(f)
        for kind, faults in by_kind.items():
            times = [f.recovered_s for f in faults if f.recovered_s is not None]
            p50 = f"{statistics.median(times):.1f}s" if times else "-"
            top = f"{max(times):.1f}s" if times else "-"
            out.append(f"{kind:<11} {len(faults):>8}  {len(times):>9}  {p50:>12}  {top:>6}  "
                       f"{means[kind]}")
        o = self.oracle
        records = sum(len(r) for r in o.records.values())
        out += [
            f"records in Kafka: {records:,} ({', '.join(f'{n:,}' for n in o.per_producer)} "
            f"from {len(o.per_producer)} producer runs, acknowledged as reported: "
            f"{', '.join(f'{n:,}' for n in o.acked)}); records no producer or injection "
            f"explains: {len(o.problems)}",
            f"raw.trades: {len(o.trades):,} expected; lost {self.lost}, duplicated "
            f"{self.duplicated}, wrong or unexpected {self.wrong}",
            f"raw.rejects: {len(o.rejected):,} expected "
            f"({sum(1 for w in o.rejected.values() if w == 'duplicate'):,} duplicates); "
            f"missing {self.rejects_missing}, wrong reason or unexpected {self.rejects_wrong}",
            f"serving.bars_1m: {self.serving_windows:,} windows expected; differing "
            f"{len(self.serving_diff)}" + (f", e.g. {self.serving_diff[:3]}"
                                           if self.serving_diff else ""),
            f"reconcile: {self.reconcile.get('windows_compared', '?')} windows compared, "
            f"unexplained {self.reconcile.get('unexplained', self.reconcile)}",
            f"faults: {len(self.faults)}, unplanned deaths {len(self.unplanned)}, duplicates "
            f"{self.duplicated}, losses {self.lost}: "
            + ("PASS" if self.ok() else "FAIL"),
        ]
        out += [f"  {p}" for p in o.problems[:5]]
        out += [f"  missing: {w}" for w in self.lost_where[:10]]
        out += [f"  unplanned: {u}" for u in self.unplanned]
        out += [f"  {f.kind} fault ({f.detail}): {f.problem}" for f in self.faults if f.problem]
        return out


def run(args: argparse.Namespace, *, settings: Settings | None = None,
        servers: Settings | None = None) -> Report:
    """The benchmark on a private stack, or with `settings` on the running `servers`."""
    if settings is None:
        with private_stack(speed_dedupe_horizon_s=args.horizon_s) as own:
            return run(args, settings=own)
    bench = Bench(settings, args, servers)
    try:
        report = bench.run()
        if args.hold and not report.ok():  # keep the stack for a look, until told
            (settings.home / "settings.json").write_text(settings.model_dump_json())
            print("\n".join(report.lines()))
            say(f"holding the stack ({settings.home}/settings.json) until {args.hold} exists")
            while not Path(args.hold).exists():
                time.sleep(2)
        return report
    finally:
        bench.stop()
        with contextlib.suppress(Exception):
            control.stop(settings)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n")[0])
    p.add_argument("--per-kind", type=int, default=10, help="faults of each kind (default 10)")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--rate", type=int, default=200, help="live stream, msg/s (default 200)")
    p.add_argument("--batch-every", type=int, default=45, help="batch loop period, s")
    p.add_argument("--horizon-s", type=int, default=600,
                   help="speed dedupe horizon, s (default 600, the platform's)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--hold", metavar="FILE",
                   help="on a failure keep the stack up until FILE exists (to look into it)")
    p.add_argument("--pause", type=float, nargs=2, default=(3.0, 12.0),
                   help="seconds between faults: uniform in [lo, hi]")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.monotonic()
    report = run(args)
    print(f"\nfault benchmark: {len(report.faults)} faults, {args.rate} msg/s, "
          f"{(time.monotonic() - started) / 60:.1f} min")
    for line in report.lines():
        print(line)
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
