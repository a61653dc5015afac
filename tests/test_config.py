"""Configuration: choosing a class, environment overrides, database URLs, production guards."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from flask_tracking import create_app
from flask_tracking.config import (
    CONFIGURATIONS,
    DEFAULT_SECRET_KEY,
    BaseConfiguration,
    ProductionConfiguration,
    TestConfiguration,
)
from flask_tracking.extensions import db

# The test settings, but no database URL: create_app must pick the default.
InstanceDefaultConfiguration = type(
    "InstanceDefaultConfiguration", (TestConfiguration,), {"SQLALCHEMY_DATABASE_URI": None}
)


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Select production, on an in-memory database (no file) and without GeoIP."""
    monkeypatch.setenv("FLASK_TRACKING_CONFIG", "production")
    monkeypatch.setenv("FLASK_TRACKING_SQLALCHEMY_DATABASE_URI", "sqlite://")
    monkeypatch.setenv("FLASK_TRACKING_GEOIP_PROVIDER", "none")
    return monkeypatch


def test_configuration_by_dotted_path() -> None:
    app = create_app("flask_tracking.config.TestConfiguration")
    assert app.config["TESTING"] is True
    assert app.config["HASH_ROUNDS"] == 1
    assert app.config["WTF_CSRF_ENABLED"] is False
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"


def test_configuration_by_class() -> None:
    app = create_app(TestConfiguration)
    assert app.config["TESTING"] is True


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("test", TestConfiguration),
        ("testing", TestConfiguration),
        ("development", CONFIGURATIONS["development"]),
        ("debug", CONFIGURATIONS["development"]),
        (" Development ", CONFIGURATIONS["development"]),
    ],
)
def test_flask_tracking_config_selects_the_class(
    monkeypatch: pytest.MonkeyPatch, name: str, expected: type[BaseConfiguration]
) -> None:
    monkeypatch.setenv("FLASK_TRACKING_CONFIG", name)
    monkeypatch.setenv("FLASK_TRACKING_SQLALCHEMY_DATABASE_URI", "sqlite://")
    monkeypatch.setenv("FLASK_TRACKING_GEOIP_PROVIDER", "none")
    app = create_app()
    assert app.config["TESTING"] is expected.TESTING
    assert app.config["DEBUG"] is expected.DEBUG
    assert app.config["HASH_ROUNDS"] == expected.HASH_ROUNDS


def test_development_is_the_default_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLASK_TRACKING_CONFIG", raising=False)
    monkeypatch.setenv("FLASK_TRACKING_SQLALCHEMY_DATABASE_URI", "sqlite://")
    monkeypatch.setenv("FLASK_TRACKING_GEOIP_PROVIDER", "none")
    app = create_app()
    assert app.config["DEBUG"] is True
    assert app.config["TESTING"] is False


def test_an_unknown_configuration_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_TRACKING_CONFIG", "staging")
    with pytest.raises(RuntimeError, match="staging") as raised:
        create_app()
    message = str(raised.value)
    for choice in ("development", "production", "test"):
        assert choice in message


@pytest.mark.parametrize(
    ("variable", "value", "key", "expected"),
    [
        ("FLASK_TRACKING_HASH_ROUNDS", "7", "HASH_ROUNDS", 7),
        ("FLASK_TRACKING_RESPECT_DNT", "false", "RESPECT_DNT", False),
        ("FLASK_TRACKING_STORE_VISITOR_IP", "true", "STORE_VISITOR_IP", True),
        ("FLASK_TRACKING_GEOIP_HTTP_TIMEOUT", "1.5", "GEOIP_HTTP_TIMEOUT", 1.5),
        ("FLASK_TRACKING_GEOIP_PROVIDER", "none", "GEOIP_PROVIDER", "none"),
        ("FLASK_TRACKING_LOG_LEVEL", "WARNING", "LOG_LEVEL", "WARNING"),
        ("FLASK_TRACKING_ERROR_LOG_PATH", "null", "ERROR_LOG_PATH", None),
        # A key no class defines is set as well.
        ("FLASK_TRACKING_SOMETHING_NEW", '{"a": [1, 2]}', "SOMETHING_NEW", {"a": [1, 2]}),
    ],
)
def test_the_environment_overrides_any_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str, expected: object
) -> None:
    # Flask's from_prefixed_env parses each value as JSON and falls back to the plain string.
    monkeypatch.setenv(variable, value)
    app = create_app(TestConfiguration)
    assert app.config[key] == expected
    assert type(app.config[key]) is type(expected)


def test_plain_database_url_and_secret_key_are_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri = "sqlite:///" + str(tmp_path / "plain.db")
    monkeypatch.setenv("DATABASE_URL", uri)
    monkeypatch.setenv("SECRET_KEY", "plain-secret-from-the-environment")
    app = create_app(TestConfiguration)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == uri
    assert app.config["SECRET_KEY"] == "plain-secret-from-the-environment"
    assert not (tmp_path / "plain.db").exists()  # nothing connects until it is used


def test_prefixed_variables_win_over_the_plain_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:////nonexistent/plain.db")
    monkeypatch.setenv("FLASK_TRACKING_SQLALCHEMY_DATABASE_URI", "sqlite://")
    monkeypatch.setenv("SECRET_KEY", "plain")
    monkeypatch.setenv("FLASK_TRACKING_SECRET_KEY", "prefixed")
    app = create_app(TestConfiguration)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"
    assert app.config["SECRET_KEY"] == "prefixed"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example:5432/track", "postgresql+psycopg://u:p@db.example:5432/track"),
        ("postgresql://u:p@db.example/track", "postgresql+psycopg://u:p@db.example/track"),
        ("postgresql+psycopg://u@db.example/track", "postgresql+psycopg://u@db.example/track"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_postgres_urls_use_psycopg_3(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    app = create_app(TestConfiguration)  # the engine is built, but never connects here
    assert app.config["SQLALCHEMY_DATABASE_URI"] == expected
    if expected.startswith("postgresql"):
        with app.app_context():
            assert db.engine.dialect.name == "postgresql"
            assert db.engine.dialect.driver == "psycopg"
            db.engine.dispose()


def test_without_a_url_the_database_is_sqlite_in_the_users_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    instance = tmp_path / "instance"  # an installed package's instance folder, say: not used
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda _self: str(instance))
    app = create_app(InstanceDefaultConfiguration)
    data = tmp_path / "share" / "flask-tracking"
    assert app.config["DATA_DIR"] == str(data)
    expected = data / "flask_tracking.db"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + str(expected)
    assert data.is_dir()  # created, so SQLite can make the file there
    assert not expected.exists()  # but no database file until something connects
    assert not instance.exists()


@pytest.mark.parametrize("left_there", ["flask_tracking.db", "events.duckdb", "spool"])
def test_data_an_older_version_left_in_the_instance_folder_is_still_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, left_there: str
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / left_there).mkdir() if left_there == "spool" else (instance / left_there).touch()
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda _self: str(instance))
    app = create_app(InstanceDefaultConfiguration)
    assert app.config["DATA_DIR"] == str(instance)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'flask_tracking.db'}"


def test_data_dir_from_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLASK_TRACKING_DATA_DIR", str(tmp_path / "chosen"))
    app = create_app(InstanceDefaultConfiguration)
    assert app.config["DATA_DIR"] == str(tmp_path / "chosen")
    assert (
        app.config["SQLALCHEMY_DATABASE_URI"]
        == f"sqlite:///{tmp_path / 'chosen'}/flask_tracking.db"
    )


@pytest.mark.parametrize(
    "secret",
    [
        None,  # no SECRET_KEY at all: the class default, the well-known development key
        DEFAULT_SECRET_KEY,
        "",
        "short",
        "fifteen-chars!!",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",  # long, but guessable: few distinct characters
        "abababababababababab1212",
        # Published in tutorials: the original Flask-Tracking series, Flask's, microblog's…
        "flask-session-insecure-secret-key",
        "FLASK_SESSION_INSECURE_SECRET_KEY",
        "you-will-never-guess",
        "hard to guess string",
        "super secret key",
        "change-me",
        "a really really really really long secret key",
    ],
)
def test_production_refuses_a_missing_default_short_or_published_secret_key(
    production_env: pytest.MonkeyPatch, secret: str | None
) -> None:
    if secret is not None:
        production_env.setenv("FLASK_TRACKING_SECRET_KEY", secret)
    with pytest.raises(RuntimeError, match="SECRET_KEY") as raised:
        create_app()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("Refusing to start")


def test_production_refuses_the_default_key_from_the_plain_variable(
    production_env: pytest.MonkeyPatch,
) -> None:
    production_env.setenv("SECRET_KEY", DEFAULT_SECRET_KEY)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


@pytest.mark.parametrize("variable", ["SECRET_KEY", "FLASK_TRACKING_SECRET_KEY"])
def test_production_starts_with_a_real_secret_key(
    production_env: pytest.MonkeyPatch, variable: str
) -> None:
    key = secrets.token_hex(32)
    production_env.setenv(variable, key)
    app = create_app()
    assert app.config["SECRET_KEY"] == key
    assert app.config["DEBUG"] is False
    assert app.config["TESTING"] is False
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"


def test_production_cookies_are_secure(production_env: pytest.MonkeyPatch) -> None:
    production_env.setenv("SECRET_KEY", secrets.token_hex(32))
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    # The login form puts its CSRF token in the session, so the page sets the cookie.
    response = app.test_client().get("/login/", base_url="https://tracking.example")
    assert response.status_code == 200
    (cookie,) = response.headers.getlist("Set-Cookie")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite"} <= attributes


def test_default_hash_rounds_are_strong() -> None:
    assert BaseConfiguration.HASH_ROUNDS >= 210_000
    assert ProductionConfiguration.HASH_ROUNDS >= 210_000


def test_production_app_uses_strong_hash_rounds(production_env: pytest.MonkeyPatch) -> None:
    production_env.setenv("SECRET_KEY", secrets.token_hex(32))
    assert create_app().config["HASH_ROUNDS"] >= 210_000


def test_the_suite_runs_on_the_database_it_was_asked_to(app: Flask) -> None:
    # conftest keeps TEST_DATABASE_URL in the environment (only FLASK_TRACKING_*, DATABASE_URL
    # and SECRET_KEY are removed), so it can be read here.
    wanted = os.environ.get("TEST_DATABASE_URL")
    with app.app_context():
        if wanted:
            assert db.engine.dialect.name == "postgresql"
            assert db.engine.url.database == make_url(wanted).database
        else:
            assert db.engine.dialect.name == "sqlite"
            assert db.engine.url.database in (None, "", ":memory:")


def test_the_conftest_environment_is_clean() -> None:
    leaked: dict[str, Any] = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("FLASK_TRACKING_") or k in ("DATABASE_URL", "SECRET_KEY")
    }
    assert leaked == {}


def test_nested_environment_overrides_do_not_leak_into_other_apps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLASK_TRACKING_SQLALCHEMY_ENGINE_OPTIONS__echo", "true")
    first = create_app(TestConfiguration)
    monkeypatch.delenv("FLASK_TRACKING_SQLALCHEMY_ENGINE_OPTIONS__echo")
    second = create_app(TestConfiguration)
    assert first.config["SQLALCHEMY_ENGINE_OPTIONS"]["echo"] is True
    assert "echo" not in second.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert "echo" not in TestConfiguration.SQLALCHEMY_ENGINE_OPTIONS


def test_a_numeric_secret_key_is_used_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_TRACKING_SECRET_KEY", "12345678901234567890")
    app = create_app(TestConfiguration)
    assert app.config["SECRET_KEY"] == "12345678901234567890"
