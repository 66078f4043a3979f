"""A stack of its own for a test session or a benchmark: a CONCORD_HOME of its own and a
free port for each of Kafka's and Trino's listeners, so it never collides with a demo or
another stack on the machine; always stopped at the end, also on failure."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from concord import demo
from concord.stack import down, up
from infra.processes import free_port
from shared.config import Settings


def private_settings(home: Path, **overrides: Any) -> Settings:
    """Settings with `home` as CONCORD_HOME and free ports for every listener; monitoring
    off unless `overrides` turn it on (a benchmark's figures then carry no scrapes)."""
    ports = {"kafka_port": free_port(), "kafka_controller_port": free_port(),
             "trino_port": free_port(), "trino_https_port": free_port(),
             "metrics_port": free_port(), "prometheus_port": free_port(),
             "flink_metrics_port": free_port(), "kafka_metrics_port": free_port()}
    return Settings(home=home, **{**ports, "monitoring": False, **overrides})


CLUSTER_PORTS = 100  # the cluster profile's servers listen on base .. base + 99


def free_port_base(span: int = CLUSTER_PORTS, tries: int = 50) -> int:
    """A base port with `span` consecutive free ports (the cluster profile's block)."""
    import random

    from infra.processes import port_in_use

    for _ in range(tries):
        # Below Linux's ephemeral range (32768-60999), where free_port's picks land.
        base = random.randrange(20000, 32700 - span, 100)  # noqa: S311 - not a secret
        if not any(port_in_use(p) for p in range(base, base + span)):
            return base
    raise RuntimeError(f"no block of {span} free ports found in {tries} tries")


def private_cluster_settings(home: Path, **overrides: Any) -> Settings:
    """`private_settings` in the cluster profile: its servers in a free block of ports."""
    return private_settings(home, **{"profile": "cluster",
                                     "cluster_port_base": free_port_base(), **overrides})


@contextmanager
def running(settings: Settings) -> Iterator[Settings]:
    """Kafka and Trino up (topic and schemas created) for the block; then what the block
    may have started on them (speed job, demo processes) and the servers are stopped."""
    try:
        up(settings)
        yield settings
    finally:
        try:
            demo.stop(settings)
        finally:
            down(settings)


@contextmanager
def private_stack(*, start: bool = True, **overrides: Any) -> Iterator[Settings]:
    """A temporary home (removed afterwards) and its settings; the stack `running` in it
    unless `start` is false (a benchmark that needs only the lake and Spark)."""
    with tempfile.TemporaryDirectory(prefix="concord-") as home:
        settings = private_settings(Path(home), **overrides)
        if not start:
            yield settings
            return
        with running(settings):
            yield settings


def own_home(stack: Settings, root: Path, **overrides: object) -> Settings:
    """The stack's settings with a CONCORD_HOME and lake of their own under `root` (for a
    speed job's pid, status and checkpoints); the Trino credentials are the stack's."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "secrets").symlink_to(stack.home / "secrets")
    return stack.model_copy(update={"home": home, "lake_uri": (root / "lake").as_uri(),
                                    **overrides})
