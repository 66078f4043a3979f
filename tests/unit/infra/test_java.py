from __future__ import annotations

from pathlib import Path

import pytest

from infra.java import JavaNotFoundError, find_jdk, java17, java_major
from shared.config import Settings


def test_machine_jdk17_is_found() -> None:
    jdk = java17(Settings())
    assert jdk.major == 17 and jdk.java.is_file()


def test_explicit_home_that_is_not_a_jdk_names_the_variable(tmp_path: Path) -> None:
    settings = Settings(java_trino_home=tmp_path, artifacts=tmp_path)
    with pytest.raises(JavaNotFoundError, match="CONCORD_JAVA_TRINO_HOME"):
        find_jdk(settings, minimum=24)


def test_java_major_reads_release_file(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").write_text("")
    (tmp_path / "release").write_text('JAVA_VERSION="25.0.2"\n')
    assert java_major(tmp_path) == 25
    assert java_major(tmp_path / "nope") is None
