"""Monitoring: a Prometheus server and the engines' own metrics endpoints, all on 127.0.0.1.

With CONCORD_MONITORING on (the default), `concord up` starts Prometheus here after
Kafka and Trino, scraping every CONCORD_SCRAPE_INTERVAL_S:

    concord   the platform's exporter (concord.metrics: `concord status` as metrics),
              http://127.0.0.1:$CONCORD_METRICS_PORT/metrics
    flink     the speed job's Flink (its Prometheus reporter, bound to 127.0.0.1 by
              infra/prometheus/flink/LoopbackPrometheusReporter.java: Flink's own binds
              every interface), :$CONCORD_FLINK_METRICS_PORT
    kafka     the local broker's MBeans (the Prometheus JMX exporter as a Java agent,
              infra/prometheus/kafka-jmx.yml), :$CONCORD_KAFKA_METRICS_PORT
    trino     Trino's OpenMetrics endpoint /metrics over HTTPS as `ops` (the password in
              a 0600 file under $CONCORD_HOME/secrets, the certificate as the CA)
    prometheus  itself

with the recording and alert rules of infra/prometheus/alerts.yml (`promtool check
rules` and `promtool test rules` run them in the tests). Prometheus and promtool come
from Debian's `prometheus` package, unpacked into the artifacts folder by `make setup`.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from infra import artifacts
from infra.processes import Service
from infra.security import cert_file, password, write_private
from shared.config import Settings

HERE = Path(__file__).resolve().parent / "prometheus"
RULES = HERE / "alerts.yml"
RULE_TESTS = HERE / "alerts_test.yml"
KAFKA_JMX_CONFIG = HERE / "kafka-jmx.yml"
FLINK_REPORTER = "org.apache.flink.metrics.prometheus.LoopbackPrometheusReporter$Factory"
RETENTION = "7d"


def prometheus_service(settings: Settings) -> Service:
    return Service("prometheus", settings.run_dir,
                   settings.log_dir / "prometheus" / "prometheus.log", (settings.prometheus_port,))


def prometheus_dir(settings: Settings) -> Path:
    return settings.data_dir / "prometheus"


def rules_text(settings: Settings) -> str:
    """The shipped rules, every alert's `for:` replaced by CONCORD_ALERT_FOR_S if set."""
    text = RULES.read_text()
    if settings.alert_for_s is not None:
        text = re.sub(r"(?m)^(\s+for:\s*)\S+", rf"\g<1>{settings.alert_for_s}s", text)
    return text


def scrape_configs(settings: Settings, secrets: Path) -> list[dict[str, Any]]:
    """One job per target; Trino's with basic auth over HTTPS (password file `secrets`)."""
    def job(name: str, port: int, **extra: Any) -> dict[str, Any]:
        return {"job_name": name, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                **extra}

    jobs = [job("prometheus", settings.prometheus_port),
            job("concord", settings.metrics_port),
            job("flink", settings.flink_metrics_port)]
    if settings.manages_kafka:
        jobs.append({"job_name": "kafka", "static_configs": [{"targets": [
            f"127.0.0.1:{settings.kafka_node_metrics_port(n)}"
            for n in range(1, settings.kafka_brokers + 1)]}]})
    if settings.manages_trino:
        # Trino renders ~6,700 series per scrape: every 30 s at most, so that watching it
        # is not a load of its own on a small box.
        jobs.append(job("trino", settings.trino_https_port, scheme="https",
                        scrape_interval=f"{max(30, settings.scrape_interval_s)}s",
                        basic_auth={"username": "ops", "password_file": str(secrets)},
                        tls_config={"ca_file": str(cert_file(settings))}))
    return jobs


def write_config(settings: Settings) -> Path:
    """prometheus.yml (JSON, which is YAML) and the rules under $CONCORD_HOME/data."""
    folder = prometheus_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    rules = folder / "alerts.yml"
    rules.write_text(rules_text(settings))
    secrets = settings.home / "secrets" / "prometheus-trino.password"
    if settings.manages_trino:
        write_private(secrets, password(settings, "ops").encode())
    interval = f"{settings.scrape_interval_s}s"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "scrape_timeout": f"{min(settings.scrape_interval_s, 10)}s"},
        "rule_files": [str(rules)],
        "scrape_configs": scrape_configs(settings, secrets),
    }
    path = folder / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2))
    return path


def prometheus_command(settings: Settings, config: Path) -> list[str]:
    return [str(artifacts.prometheus_bin(settings, "prometheus")),
            f"--config.file={config}",
            f"--storage.tsdb.path={prometheus_dir(settings) / 'tsdb'}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
            "--web.enable-lifecycle",
            "--log.level=warn"]


def prometheus_ready(settings: Settings) -> bool:
    with urllib.request.urlopen(f"{settings.prometheus_url}/-/ready", timeout=2) as resp:  # noqa: S310 - loopback
        return bool(resp.status == 200)


def start_prometheus(settings: Settings) -> int:
    config = write_config(settings)
    return prometheus_service(settings).start(
        prometheus_command(settings, config), env={}, cwd=prometheus_dir(settings),
        ready=lambda: prometheus_ready(settings), timeout_s=60)


def prometheus_api(settings: Settings, path: str, timeout_s: float = 3.0) -> Any:
    """GET Prometheus' HTTP API (`/api/v1/...`); its `data`, or raises."""
    with urllib.request.urlopen(f"{settings.prometheus_url}{path}", timeout=timeout_s) as resp:  # noqa: S310 - loopback
        body = json.loads(resp.read())
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus answered {path} with {body.get('error', body)}")
    return body["data"]


def prometheus_targets(settings: Settings) -> dict[str, str]:
    """Each scrape job's health as Prometheus sees it: {"concord": "up", ...}."""
    targets = prometheus_api(settings, "/api/v1/targets")["activeTargets"]
    return {t["labels"]["job"]: t["health"] for t in targets}


def prometheus_alerts(settings: Settings) -> list[dict[str, str]]:
    """The alerts pending or firing: name, state and summary of each."""
    return [{"name": a["labels"]["alertname"], "state": a["state"],
             "summary": a.get("annotations", {}).get("summary", "")}
            for a in prometheus_api(settings, "/api/v1/alerts")["alerts"]]


def kafka_agent_options(settings: Settings, node: int = 1) -> list[str]:
    """The JVM option that makes the broker `node` serve its MBeans on 127.0.0.1 (none
    when monitoring is off)."""
    if not settings.monitoring:
        return []
    agent = artifacts.jmx_agent_jar(settings)
    port = settings.kafka_node_metrics_port(node)
    return [f"-javaagent:{agent}=127.0.0.1:{port}:{KAFKA_JMX_CONFIG}"]


def flink_reporter_options(settings: Settings) -> dict[str, str]:
    """Flink configuration for the speed job's metrics reporter (empty when monitoring is
    off, or the job goes to a Flink cluster: that cluster's own configuration says how it
    reports). Its jars must be on the class path of the JVM (speed_layer.job)."""
    if not settings.monitoring or settings.flink_cluster:
        return {}
    return {"metrics.reporter.prom.factory.class": FLINK_REPORTER,
            "metrics.reporter.prom.host": "127.0.0.1",
            "metrics.reporter.prom.port": str(settings.flink_metrics_port)}
