"""Process supervision against a real (tiny) server: python's http.server."""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from infra.processes import Service, ServiceError, _group_alive, free_port, port_in_use


def _http_service(tmp_path: Path, port: int) -> Service:
    return Service("web", tmp_path / "run", tmp_path / "logs" / "web.log", (port,))


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
        return bool(resp.status == 200)


def test_start_waits_for_readiness_and_stop_ends_the_process(tmp_path: Path) -> None:
    port = free_port()
    svc = _http_service(tmp_path, port)
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    pid = svc.start(cmd, env={}, cwd=tmp_path, ready=lambda: _ready(port), timeout_s=30)
    assert svc.pid() == pid
    assert port_in_use(port)
    assert svc.stop(grace_s=10) is True
    assert svc.pid() is None
    assert not port_in_use(port)
    assert not svc.pid_file.exists()
    assert svc.stop() is False  # nothing running: says so, no error


def test_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        svc = _http_service(tmp_path, port)
        with pytest.raises(ServiceError, match=f"port {port} .* already in use"):
            svc.start(["true"], env={}, cwd=tmp_path, ready=lambda: True, timeout_s=5)
        assert not svc.pid_file.exists()


def test_a_process_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    svc = _http_service(tmp_path, free_port())
    cmd = [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"]
    with pytest.raises(ServiceError, match="(?s)exited with code 3.*boom: bad config"):
        svc.start(cmd, env={}, cwd=tmp_path, ready=lambda: False, timeout_s=30)
    assert svc.pid() is None


def test_not_ready_in_time_is_stopped(tmp_path: Path) -> None:
    svc = _http_service(tmp_path, free_port())
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(ServiceError, match="not ready after"):
        svc.start(cmd, env={}, cwd=tmp_path, ready=lambda: False, timeout_s=1)
    assert svc.pid() is None


def test_stale_pid_file_is_not_trusted(tmp_path: Path) -> None:
    svc = _http_service(tmp_path, free_port())
    svc.run_dir.mkdir(parents=True)
    # pid 1 exists, but its start time differs: it must not be taken for our server.
    svc.pid_file.write_text('{"pid": 1, "start_time": -5}')
    assert svc.pid() is None
    assert not svc.pid_file.exists()


def test_a_nice_service_yields_in_its_process_and_its_session_group(tmp_path: Path) -> None:
    """`nice` lowers the server's own priority (every thread it starts) and, where the
    kernel groups sessions (autogroups), its session's: a process nice alone would not
    count against the other services, each a session of its own."""
    port = free_port()
    svc = _http_service(tmp_path, port)
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    pid = svc.start(cmd, env={}, cwd=tmp_path, ready=lambda: _ready(port), timeout_s=30,
                    nice=7)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[16]) == 7  # field 19: nice
        assert "http.server" in Path(f"/proc/{pid}/cmdline").read_text()  # nice exec'd it
        group = Path(f"/proc/{pid}/autogroup")
        if group.exists():
            assert group.read_text().split()[-1] == "7"
    finally:
        svc.stop(grace_s=10)


def test_stop_also_ends_a_child_that_outlives_the_leader(tmp_path: Path) -> None:
    """The leader exits on SIGTERM, its child ignores it (as the speed job's JVM once
    outlived its Python process): after the grace period the child is killed too."""
    svc = Service("pair", tmp_path / "run", tmp_path / "logs" / "pair.log", ())
    cmd = ["sh", "-c", '(trap "" TERM; exec sleep 60) & wait']
    pid = svc.start(cmd, env={}, cwd=tmp_path, ready=lambda: True, timeout_s=5)
    time.sleep(0.5)  # the child is running
    assert svc.stop(grace_s=1) is True
    assert not _group_alive(pid)


def test_the_leftovers_of_a_leader_killed_alone_are_cleared_by_start_and_stop(
        tmp_path: Path) -> None:
    """SIGKILL of the leader alone (the speed job's Python process) leaves its child (the
    Flink JVM) running: not reported as running, named by `leftovers`, and killed before
    the next start, or by stop."""
    import os
    import signal

    svc = Service("pair", tmp_path / "run", tmp_path / "logs" / "pair.log", ())
    cmd = ["sh", "-c", "sleep 60 & wait"]
    for how in ("start", "stop"):
        pid = svc.start(cmd, env={}, cwd=tmp_path, ready=lambda: True, timeout_s=5)
        time.sleep(0.3)  # the child is running
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert svc.pid() is None and svc.leftovers() == pid and _group_alive(pid)
        if how == "start":
            again = svc.start(cmd, env={}, cwd=tmp_path, ready=lambda: True, timeout_s=5)
            assert not _group_alive(pid) and svc.pid() == again
            assert svc.stop(grace_s=1) is True
        else:
            assert svc.stop(grace_s=1) is True  # nothing ran, but something was left
            assert not _group_alive(pid) and svc.leftovers() is None
        assert not svc.pid_file.exists()
