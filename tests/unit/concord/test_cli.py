from __future__ import annotations

from pathlib import Path

import pytest

from concord.cli import build_parser, main


def test_help_lists_commands_and_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for word in ("up", "down", "status", "query", "serve", "CONCORD_HOME", "CONCORD_TRINO_URL"):
        assert word in out


def test_down_with_nothing_running_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONCORD_HOME", str(tmp_path))
    assert main(["down"]) == 0
    assert "nothing was running" in capsys.readouterr().out


def test_up_without_artifacts_fails_clearly_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONCORD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONCORD_ARTIFACTS", str(tmp_path / "empty"))
    assert main(["up"]) == 1
    err = capsys.readouterr().err
    assert "make setup" in err
    run_dir = tmp_path / "home" / "run"
    assert not run_dir.exists() or not any(run_dir.iterdir())
