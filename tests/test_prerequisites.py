"""tools/prerequisites.py: what `make run` and `make test` check before anything else runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import prerequisites


def executable(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_chromium_is_found_by_any_of_its_names_or_named_by_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert prerequisites.find_chromium({}) is None
    browser = executable(tmp_path, "chromium-browser")
    assert prerequisites.find_chromium({}) == str(browser)
    other = executable(tmp_path, "my-chrome")
    assert prerequisites.find_chromium({"CHROMIUM": "my-chrome"}) == str(other)
    assert prerequisites.find_chromium({"CHROMIUM": str(tmp_path / "absent")}) is None


def test_a_missing_need_says_in_one_line_what_to_install_when_it_cannot_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium, and no apt-get either
    monkeypatch.delenv("CHROMIUM", raising=False)
    assert prerequisites.main(["run"]) == 0  # this Python makes venvs
    monkeypatch.setattr(prerequisites, "on_path", lambda name: name != "caddy")
    assert prerequisites.main(["test"]) == 1
    said = capsys.readouterr().err.strip().splitlines()
    assert said == [
        "make test needs Chromium (for the browser tests), Caddy: install them first "
        "(Debian/Ubuntu: sudo apt-get install chromium caddy)."
    ]
    executable(tmp_path, "chromium")
    assert prerequisites.main(["test"]) == 1
    assert capsys.readouterr().err.strip() == (
        "make test needs Caddy: install it first (Debian/Ubuntu: sudo apt-get install caddy)."
    )


def test_an_unknown_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert prerequisites.main(["deploy"]) == 2
    assert "usage: prerequisites.py {run|test}" in capsys.readouterr().err


def test_the_browser_tests_and_this_machine_agree_on_a_chromium() -> None:
    found = prerequisites.find_chromium()
    assert found is not None and os.access(found, os.X_OK)
