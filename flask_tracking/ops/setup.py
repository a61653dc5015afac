"""`flask-tracking init`: a settings file with a generated secret, a migrated database and the
first user — everything a new installation needs before `serve`."""

from __future__ import annotations

import os
import secrets
import shlex

import platformdirs
from flask_migrate import upgrade
from werkzeug.datastructures import MultiDict

from flask_tracking.extensions import db
from flask_tracking.users import accounts
from flask_tracking.users.forms import RegisterForm


class SetupError(Exception):
    """init cannot go on; the message says why."""


def settings_for(data_dir: str, database_url: str | None) -> dict[str, str]:
    """The settings of a new production installation."""
    settings = {
        "FLASK_TRACKING_CONFIG": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "FLASK_TRACKING_DATA_DIR": data_dir,
    }
    if database_url:
        settings["DATABASE_URL"] = database_url
    return settings


def write_env_file(path: str, settings: dict[str, str], *, force: bool) -> None:
    """Write KEY=value lines, readable by its owner only (it holds the secret)."""
    if os.path.exists(path) and not force:
        raise SetupError(f"{path} exists already: keep it, or run again with --force")
    lines = ["# Flask-Tracking settings, written by `flask-tracking init`."]
    lines += [f"{key}={shlex.quote(value)}" for key, value in settings.items()]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def set_up(
    env_file: str,
    *,
    data_dir: str | None,
    database_url: str | None,
    email: str,
    password: str,
    force: bool = False,
) -> list[str]:
    """Write the settings, migrate the database, add the first user; return what was done."""
    from flask_tracking import create_app

    data = os.path.abspath(
        data_dir or platformdirs.user_data_dir("flask-tracking", appauthor=False)
    )
    settings = settings_for(data, database_url)
    if os.path.exists(env_file) and not force:
        raise SetupError(f"{env_file} exists already: keep it, or run again with --force")
    os.makedirs(data, exist_ok=True)
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        app = create_app()
        with app.test_request_context():
            # Checked as the registration form checks it, before anything is written.
            form = RegisterForm(
                formdata=MultiDict({"email": email, "password": password}), meta={"csrf": False}
            )
            if not form.validate():
                problems = "; ".join(f"{name}: {errors[0]}" for name, errors in form.errors.items())
                raise SetupError(f"the first user: {problems}")
            upgrade()
            try:
                first = accounts.register(email, password, verified=True).email
            except accounts.EmailTaken:
                raise SetupError(f"{email} has an account already in that database") from None
            url = db.engine.url.render_as_string(hide_password=True)
            db.session.remove()
            db.engine.dispose()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    write_env_file(env_file, settings, force=force)
    return [
        f"Wrote {env_file} (a new secret key; keep the file private).",
        f"Data directory: {data}",
        f"Database: {url}, migrated.",
        f"First user: {first}.",
        "Next: `flask-tracking serve` in this directory (it reads .env), then "
        "`flask-tracking doctor` to check the setup.",
    ]
