"""Security checks that can fail, on the real stack: the secrets never leak into logs,
`concord status --json`, `concord config` or an error message; a burst of wrong
passwords does not slow another user's login; every listener binds 127.0.0.1 only."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import trino.dbapi
from trino.auth import BasicAuthentication
from trino.exceptions import HttpError

from concord.metrics import exporter_service
from infra.monitoring import prometheus_service
from infra.security import cert_file, passwords, secrets_dir
from infra.services import kafka_service, trino_service
from shared.config import Settings

pytestmark = pytest.mark.integration
CONCORD = str(Path(sys.executable).with_name("concord"))


def _secrets(settings: Settings) -> list[str]:
    """Every secret string: the passwords, the internal secret, the private key's body."""
    found = list(passwords(settings).values())
    found.append((secrets_dir(settings) / "trino-internal.secret").read_text().strip())
    pem = (secrets_dir(settings) / "trino-server.pem").read_text().splitlines()
    begin = next(i for i, line in enumerate(pem) if "BEGIN" in line and "PRIVATE KEY" in line)
    end = next(i for i, line in enumerate(pem) if i > begin and "END" in line)
    found += [line for line in pem[begin + 1:end] if len(line) >= 32]
    assert len(found) >= 5 and all(len(s) >= 16 for s in found)
    return found


def _concord(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_env()}
    return subprocess.run([CONCORD, *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_secrets_never_appear_in_logs_status_config_or_errors(stack: Settings) -> None:
    secrets = _secrets(stack)
    outputs = {
        "status --json": _concord(stack, "status", "--json"),
        "config": _concord(stack, "config"),
        # a denied query and a failing one: their error messages
        "denied": _concord(stack, "query", "CREATE SCHEMA lake.not_for_desk",
                           "--user", "desk"),
        "failing": _concord(stack, "query", "SELECT * FROM lake.nope.nothing"),
    }
    assert outputs["denied"].returncode == 1 and "Access Denied" in outputs["denied"].stderr
    assert outputs["failing"].returncode == 1
    texts = {name: done.stdout + done.stderr for name, done in outputs.items()}
    logs = [p for p in (stack.home / "logs").rglob("*") if p.is_file()]
    assert logs, "the stack writes logs"
    texts |= {str(p): p.read_text(errors="replace") for p in logs}
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in {where}"


def _login(settings: Settings, user: str, pw: str) -> float:
    """Seconds for one authenticated SELECT 1 on a new connection; raises if refused."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(cert_file(settings))
    conn = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host="127.0.0.1", port=settings.trino_https_port, http_scheme="https",
        catalog="lake", user=user, http_session=session, auth=BasicAuthentication(user, pw))
    t0 = time.monotonic()
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchall()
        return time.monotonic() - t0
    finally:
        conn.close()


def test_wrong_passwords_do_not_slow_another_users_login(stack: Settings) -> None:
    right = passwords(stack)
    before = min(_login(stack, "desk", right["desk"]) for _ in range(3))
    for i in range(20):
        with pytest.raises(HttpError, match="401"):
            _login(stack, "analyst", f"wrong-{i}")
    after = _login(stack, "desk", right["desk"])
    assert after < before + 1.0, (before, after)
    _login(stack, "analyst", right["analyst"])  # and no lockout of the attacked user either


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _listening(inodes: set[str]) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* has them) of LISTEN sockets in `inodes`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(fields[1])
    return found


LOOPBACK = ("0100007F:", "0000000000000000FFFF00000100007F:",
            "00000000000000000000000001000000:")  # 127.0.0.1, ::ffff:127.0.0.1, ::1


def test_every_listener_binds_to_loopback_only(stack: Settings) -> None:
    assert stack.monitoring  # the exporter, Prometheus and Kafka's metrics agent too
    for service in (kafka_service(stack), trino_service(stack), exporter_service(stack),
                    prometheus_service(stack)):
        pid = service.pid()
        assert pid is not None, f"{service.name} is running"
        addresses = _listening(_socket_inodes(pid))
        assert addresses, f"{service.name} listens"
        wide = [a for a in addresses if not a.startswith(LOOPBACK)]
        assert not wide, f"{service.name} listens beyond 127.0.0.1: {wide}"
