"""Process supervision: start a server detached, record it in a pid file, stop exactly it.

A pid file holds the pid and the process start time (from /proc), so a pid reused by
an unrelated process after a crash is never signalled. Each server runs in its own
session (process group), and stop signals the whole group: SIGTERM first, SIGKILL
after the grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class ServiceError(RuntimeError):
    """A service failed to start or stop; the message names the cause and the log."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def group_nice(pid: int, nice: int) -> None:
    """Give the scheduler autogroup of session leader `pid` the niceness `nice`.

    With autogroups (Linux's default for desktop and many server kernels, and here), CPU
    is shared between sessions first and a process's own niceness only counts against
    processes of its session: every Concord service is a session of its own, so the
    nice of its processes alone changes nothing (measured: Trino at nice 5 and Spark at
    nice 10 still took 68% and 32% while the speed job fell behind). Without autogroups
    there is no such file and the process niceness does the work."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")
    except OSError:
        pass


def lower_priority(nice: int) -> int:
    """Make this process (and what it starts from now on, a Spark JVM included) at least
    `nice` nice, and its autogroup too when it leads its session (a detached service,
    not a command typed in a shell: that would slow the shell's session); returns the
    niceness it has."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        if os.getsid(0) == os.getpid():
            group_nice(os.getpid(), nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for tests that must not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat from field 3 (state) on, or None when no such
    process: the command name (field 2) may hold spaces, so split after its ')'."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    """Kernel start time of `pid` in clock ticks, or None when no such process."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])  # field 22


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (0 when gone)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """CPU time (user + system) used so far by a process and (unless `children` is false)
    its children (0 when gone)."""
    total = 0
    for p in [pid, *(_children(pid) if children else [])]:
        if (fields := _stat(p)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def group_members(pgid: int) -> list[int]:
    """The pids of process group `pgid` that still run (zombies aside)."""
    return [int(proc.name) for proc in Path("/proc").glob("[0-9]*")
            if (fields := _stat(proc.name)) is not None
            and int(fields[2]) == pgid and fields[0] != "Z"]  # pgrp, state


def _group_alive(pgid: int) -> bool:
    """Whether any process of process group `pgid` still runs (zombies aside)."""
    return bool(group_members(pgid))


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return found
    for tok in out.split():
        child = int(tok)
        found.append(child)
        found.extend(_children(child))
    return found


@dataclass(frozen=True)
class Service:
    """One supervised server process."""

    name: str
    run_dir: Path
    log_file: Path
    ports: Sequence[int]

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def _recorded(self) -> int | None:
        try:
            return int(json.loads(self.pid_file.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def pid(self) -> int | None:
        """Pid of the running process this pid file records, or None. A stale file is
        removed, unless processes of the dead one's group still run (`leftovers`)."""
        try:
            record = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        pid = int(record["pid"])
        if _start_time(pid) != record.get("start_time"):
            if self.leftovers() is None:
                self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def leftovers(self) -> int | None:
        """The process group of a server that died while some of its processes did not
        (a SIGKILL of the speed job's Python process leaves its Flink JVM running the
        job), else None. The group id stays theirs: Linux does not reuse a pid while a
        process group of that id exists (a live process with that pid is the server
        itself, or an unrelated one that got the pid after the whole group ended)."""
        pid = self._recorded()
        if pid is None or _start_time(pid) is not None or not _group_alive(pid):
            return None
        return pid

    def clear_leftovers(self) -> bool:
        """SIGKILL what `leftovers` names and wait until it is gone; False when none."""
        pgid = self.leftovers()
        if pgid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        settled = time.monotonic() + 30
        while _group_alive(pgid) and time.monotonic() < settled:
            time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def start(
        self,
        cmd: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path,
        ready: Callable[[], bool],
        timeout_s: float,
        nice: int = 0,
    ) -> int:
        """Start detached (at niceness `nice`, every thread of it), wait until `ready()`
        holds; on failure stop it and raise. What a dead earlier run left is killed
        first (`clear_leftovers`)."""
        self.clear_leftovers()
        for port in self.ports:
            if port_in_use(port):
                raise ServiceError(
                    f"{self.name}: port {port} on 127.0.0.1 is already in use by another "
                    f"process. Stop that process, or choose another port (see `concord config`)."
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if nice:
            cmd = ["nice", "-n", str(nice), *cmd]  # nice execs it: the pid stays the server's
        with self.log_file.open("ab") as log:
            log.write(f"\n=== concord: starting {self.name}: {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if nice:
            group_nice(proc.pid, nice)  # its own session: its own autogroup
        self.pid_file.write_text(
            json.dumps({"pid": proc.pid, "start_time": _start_time(proc.pid), "cmd": list(cmd)})
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"{self.name} exited with code {proc.returncode} while starting.\n"
                    f"{self.log_tail()}\nFull log: {self.log_file}"
                )
            try:
                if ready():
                    return proc.pid
            except Exception:  # noqa: S110, BLE001 - not ready yet is any failure of the probe
                pass
            time.sleep(0.25)
        self.stop()
        raise ServiceError(
            f"{self.name} was not ready after {timeout_s:.0f}s and was stopped.\n"
            f"{self.log_tail()}\nFull log: {self.log_file}"
        )

    def stop(self, grace_s: float = 30.0) -> bool:
        """SIGTERM the process group, SIGKILL after `grace_s` what is left of it (the
        leader and its children: a JVM that outlives the speed job's Python process is
        stopped too); the leftovers of a dead one are killed. False when nothing ran."""
        pid = self.pid()
        if pid is None:
            cleared = self.clear_leftovers()
            self.pid_file.unlink(missing_ok=True)
            return cleared
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        def running() -> bool:
            _reap(pid)
            return _start_time(pid) is not None or _group_alive(pid)

        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and running():
            time.sleep(0.2)
        if running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _start_time(pid) is not None:
                _reap(pid)
                time.sleep(0.1)
            settled = time.monotonic() + 10
            while _group_alive(pid) and time.monotonic() < settled:
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("  | " + ln for ln in text[-lines:])


def _reap(pid: int) -> None:
    """Collect a child we started in this process, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
