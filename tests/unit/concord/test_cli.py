from __future__ import annotations

import time
from pathlib import Path

import pytest

from concord.cli import build_parser, main
from infra.processes import free_port


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


def _stack_down(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, int]:
    """A home whose Kafka and Trino ports nothing listens on."""
    ports = {"kafka": free_port(), "trino": free_port()}
    monkeypatch.setenv("CONCORD_HOME", str(tmp_path))
    monkeypatch.setenv("CONCORD_KAFKA_PORT", str(ports["kafka"]))
    monkeypatch.setenv("CONCORD_TRINO_HTTPS_PORT", str(ports["trino"]))
    return ports


@pytest.mark.parametrize(("argv", "service"), [
    *[(argv, "trino") for argv in (["query", "SELECT 1"], ["reconcile"], ["serve", "refresh"],
                                   ["sql", "--execute", "SELECT 1"])],
    *[(argv, "kafka") for argv in (["produce", "--count", "10"], ["batch", "run"],
                                   ["batch", "ingest"], ["speed", "start"])],
])
def test_a_command_whose_service_is_down_says_to_start_it(
    argv: list[str], service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ports = _stack_down(monkeypatch, tmp_path)
    where = {"trino": f"Trino is not running at https://127.0.0.1:{ports['trino']}",
             "kafka": f"Kafka is not running at 127.0.0.1:{ports['kafka']}"}[service]
    t0 = time.monotonic()
    assert main(argv) == 1
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err
    assert err.strip() == f"concord {argv[0]}: {where}: run `concord up`"


@pytest.mark.parametrize(("argv", "says"), [
    (["produce", "--rate", "-5", "--count", "10"], "--rate: -5 is out of range: must be above 0"),
    (["produce", "--rate", "nan"], "--rate: nan is out of range"),
    (["produce", "--count", "0"], "--count: 0 is out of range: must be above 0"),
    (["produce", "--late-fraction", "1.5"], "must be at least 0 and at most 1"),
    (["produce", "--live"], "--live needs --rate"),
    (["batch", "recompute", "--from", "2026-11-02", "--to", "2026-11-01"],
     "--to (2026-11-01T00:00:00+0000) must be after --from (2026-11-02T00:00:00+0000)"),
    (["batch", "recompute", "--from", "yesterday", "--to", "2026-11-01"],
     "'yesterday' is not an ISO 8601 time"),
    (["reconcile", "--from", "2026-11-02T10:00Z", "--to", "2026-11-02T10:00Z"],
     "must be after --from"),
    (["batch", "recompute", "--view", "nope", "--from", "2026-11-01", "--to", "2026-11-02"],
     "invalid choice: 'nope'"),
    (["dashboard", "--port", "70000"], "--port: 70000 is out of range"),
])
def test_a_misuse_exits_2_with_one_line_before_anything_starts(
    argv: list[str], says: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _stack_down(monkeypatch, tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert says in err
    assert len(err.strip().splitlines()) == 1  # one line, naming where the usage is
    assert "--help` shows the usage" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_speed_status_of_a_stopped_job_says_how_to_start_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _stack_down(monkeypatch, tmp_path)
    assert main(["speed", "status"]) == 1
    out = capsys.readouterr().out
    assert "running: no (`concord speed start` starts it)" in out
    assert "None" not in out


@pytest.mark.parametrize(("argv", "follows"), [(["dashboard"], True),
                                               (["dashboard", "--no-live"], False)])
def test_the_dashboard_parses_with_and_without_its_live_feed(argv: list[str],
                                                              follows: bool) -> None:
    from concord.cli import check

    args = build_parser().parse_args(argv)
    check(args)  # the produce's `--live needs --rate` must not take it for its own --live
    assert args.live_feed is follows
