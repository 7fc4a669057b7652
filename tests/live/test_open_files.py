"""Start-up refuses a stream ceiling the process's open-file limit cannot hold, after
raising the soft limit as far as the hard one lets it."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner

from service.cli import main
from service.live import open_files
from service.settings import Settings

UNLIMITED = resource.RLIM_INFINITY


def test_the_need_is_the_streams_every_database_connection_and_the_reserve() -> None:
    settings = Settings.from_env(
        {"LIVE_MAX_STREAMS": "1000", "DATABASE_POOL_SIZE": "10", "DATABASE_MAX_OVERFLOW": "5"}
    )
    assert open_files.needed(settings) == 1000 + 15 + open_files.RESERVE
    replicated = Settings.from_env(
        {
            "LIVE_MAX_STREAMS": "1000",
            "DATABASE_POOL_SIZE": "10",
            "DATABASE_MAX_OVERFLOW": "5",
            "DATABASE_URL": "postgresql://db/onramp",
            "DATABASE_READ_URL": "postgresql://replica/onramp",
        }
    )
    assert open_files.needed(replicated) == 1000 + 30 + open_files.RESERVE


def test_the_soft_limit_is_raised_as_far_as_the_hard_one_allows() -> None:
    assert open_files.raised_limit(2300, soft=1024, hard=524288) == 2300
    assert open_files.raised_limit(2300, soft=1024, hard=UNLIMITED) == 2300
    assert open_files.raised_limit(2300, soft=1024, hard=2000) == 2000
    assert open_files.raised_limit(2300, soft=4096, hard=4096) == 4096
    assert open_files.raised_limit(2300, soft=UNLIMITED, hard=UNLIMITED) == UNLIMITED


def test_a_ceiling_over_the_limit_is_one_line_naming_the_variable() -> None:
    settings = Settings.from_env({})  # 2,000 streams, a pool of 10 + 10
    need = open_files.needed(settings)
    assert open_files.problem(settings, need) is None
    assert open_files.problem(settings, UNLIMITED) is None
    problem = open_files.problem(settings, 1024)
    assert problem is not None
    assert "\n" not in problem
    assert problem.startswith("LIVE_MAX_STREAMS: 2000 streams need")
    assert f"lower it to {1024 - (need - 2000)} or raise the open-file limit" in problem


def test_serve_refuses_to_start_when_the_hard_limit_cannot_hold_its_streams(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`onramp serve` as an operator runs it, on a machine whose limit is 512 files."""
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (512, 512))
    monkeypatch.setattr(uvicorn, "run", _must_not_start)
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith(("DATABASE_", "LIVE_"))]:
        monkeypatch.delenv(name)
    result = CliRunner().invoke(main, ["serve"], env={"LIVE_MAX_STREAMS": "2000"})
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("onramp: configuration error: LIVE_MAX_STREAMS: ")
    assert "only 512" in lines[0]
    assert not (tmp_path / "onramp.db").exists()  # refused before anything started


def _must_not_start(*args: object, **kwargs: object) -> None:
    raise AssertionError("the server started")


def test_start_up_raises_the_soft_limit_when_the_hard_one_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_env({})
    limits: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (1024, 524288))
    monkeypatch.setattr(resource, "setrlimit", lambda kind, new: limits.append(new))
    assert open_files.hold(settings) is None
    assert limits == [(open_files.needed(settings), 524288)]
