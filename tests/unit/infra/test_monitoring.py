"""Prometheus' configuration and rules, checked by Prometheus' own promtool: the rules
parse, each alert fires on series that should make it fire and stays quiet on others
(infra/prometheus/alerts_test.yml), and the configuration `concord up` writes is valid."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from infra import artifacts
from infra.monitoring import RULE_TESTS, RULES, rules_text, write_config
from infra.security import ensure_secrets
from shared.config import Settings


@pytest.fixture(scope="module")
def promtool() -> Path:
    return artifacts.prometheus_bin(Settings(), "promtool")


def test_the_shipped_rules_pass_promtool_check(promtool: Path) -> None:
    proc = subprocess.run([str(promtool), "check", "rules", str(RULES)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 9 rules found" in proc.stdout


def test_each_alert_fires_when_it_should_and_only_then(promtool: Path) -> None:
    proc = subprocess.run([str(promtool), "test", "rules", str(RULE_TESTS)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_a_broken_rule_is_caught(promtool: Path, tmp_path: Path) -> None:
    """The check above can fail: a rule with a PromQL error does not pass it."""
    broken = tmp_path / "alerts.yml"
    broken.write_text(RULES.read_text().replace("concord_freshness_seconds > 5",
                                                "concord_freshness_seconds >> 5"))
    proc = subprocess.run([str(promtool), "check", "rules", str(broken)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode != 0


def test_alert_for_override_rewrites_every_for_and_nothing_else() -> None:
    shipped = RULES.read_text()
    short = rules_text(Settings(alert_for_s=5))
    durations = re.compile(r"(?m)^\s+for: (\S+)$")
    assert len(durations.findall(shipped)) == 6 and "1m" in durations.findall(shipped)
    assert durations.findall(short) == ["5s"] * 6
    assert durations.sub("", short) == durations.sub("", shipped)
    assert rules_text(Settings()) == shipped


def test_the_written_configuration_is_valid(promtool: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, metrics_port=19464, prometheus_port=19090,
                        scrape_interval_s=5)
    ensure_secrets(settings)
    config = write_config(settings)
    proc = subprocess.run([str(promtool), "check", "config", str(config)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = {j["job_name"]: j for j in json.loads(config.read_text())["scrape_configs"]}
    assert set(jobs) == {"prometheus", "concord", "flink", "kafka", "trino"}
    assert jobs["concord"]["static_configs"][0]["targets"] == ["127.0.0.1:19464"]
    trino = jobs["trino"]
    assert trino["scheme"] == "https" and trino["basic_auth"]["username"] == "ops"
    # The password is in a private file, never in the configuration itself.
    secret = Path(trino["basic_auth"]["password_file"])
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.read_text() not in config.read_text()
    external = Settings(home=tmp_path, kafka_bootstrap="b1:9092",
                        trino_url="https://trino.example:8443")
    assert {j["job_name"] for j in json.loads(write_config(external).read_text())[
        "scrape_configs"]} == {"prometheus", "concord", "flink"}
