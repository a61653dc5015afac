"""deploy/: the container's entry point run for real, and the nginx and Caddy examples checked
by nginx and Caddy themselves (Debian's packages, which `make test` installs as root)."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def entrypoint_env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_TRACKING_")}
    env.pop("SECRET_KEY", None)
    return {
        **env,
        "PATH": f"{BIN}:{env['PATH']}",  # where the image has flask-tracking
        "FLASK_TRACKING_CONFIG": "production",
        "FLASK_TRACKING_DATA_DIR": str(data),
        "FLASK_TRACKING_GEOIP_PROVIDER": "none",
        "HOST": "127.0.0.1",
        "WORKERS": "1",
        **extra,
    }


def start(data: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(DEPLOY / "entrypoint.sh")],
        env=entrypoint_env(data, PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except requests.ConnectionError:
            pass
        assert process.poll() is None, "the entry point exited"
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.3)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)  # exec'd: the server itself gets it
    try:
        return process.wait(60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_entrypoint_keeps_a_secret_migrates_serves_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    process = start(data, port)
    secret = data / "secret_key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    first = secret.read_text()
    assert len(first.strip()) == 64
    assert stop(process) == 0
    # A second start (a new container on the same volume) keeps the same key.
    process = start(data, port)
    assert secret.read_text() == first
    assert stop(process) == 0
    assert (data / "flask_tracking.db").is_file()


def test_the_entrypoint_runs_a_command_instead_when_given_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = subprocess.run(
        [str(DEPLOY / "entrypoint.sh"), "db", "upgrade"],
        env=entrypoint_env(data),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (data / "flask_tracking.db").is_file()
    checked = subprocess.run(
        [str(DEPLOY / "entrypoint.sh"), "doctor"],
        env=entrypoint_env(data),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Migrated, secret kept in the volume: nothing fails (the writer is not running: a warning).
    assert checked.returncode == 0, checked.stdout
    assert "ok    secret key" in checked.stdout


def test_compose_runs_the_image_with_postgresql_and_a_volume() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app, db = compose["services"]["app"], compose["services"]["db"]
    assert app["build"] == {"context": ".", "dockerfile": "Containerfile"}
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://tracking:")
    assert "@db:5432/tracking" in app["environment"]["DATABASE_URL"]
    assert "app-data:/data" in app["volumes"]
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert db["image"].startswith("postgres:15")
    containerfile = (ROOT / "Containerfile").read_text()
    assert 'VOLUME ["/data"]' in containerfile
    assert "FLASK_TRACKING_DATA_DIR=/data" in containerfile
    assert "USER 10001" in containerfile and "HEALTHCHECK" in containerfile


def test_the_systemd_unit_runs_the_server_as_its_own_user_with_init_settings() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "systemd" / "flask-tracking.service")
    service = unit["Service"]
    assert service["User"] == "flask-tracking"
    assert service["EnvironmentFile"] == "/etc/flask-tracking/.env"
    assert service["ExecStart"].split()[1:3] == ["serve", "--host"]
    assert service["ExecStartPre"].endswith("flask-tracking db upgrade")
    assert service["KillSignal"] == "SIGTERM"
    assert "FLASK_TRACKING_PROXY_COUNT=1" in service["Environment"]


def test_nginx_accepts_the_example(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(nginx, os.X_OK), "nginx is missing: `make test` installs it (see README)"
    certificate, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=analytics.example.com", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (DEPLOY / "nginx" / "flask-tracking.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/analytics.example.com/", f"{tmp_path}/")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{\n access_log off;\n include {tmp_path}/site.conf;\n}}\n"
    )
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


def test_caddy_accepts_the_example(tmp_path: Path) -> None:
    caddy = shutil.which("caddy")
    assert caddy, "caddy is missing: `make test` installs it (see README)"
    checked = subprocess.run(
        [
            caddy,
            "validate",
            "--config",
            str(DEPLOY / "caddy" / "Caddyfile"),
            "--adapter",
            "caddyfile",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)},
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "Valid configuration" in checked.stdout + checked.stderr
