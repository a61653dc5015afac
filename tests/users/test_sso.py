"""Single sign-on with OpenID Connect, against a real provider on loopback (tests/oidc_provider.py):
the flow, which account an identity logs into, and every way an answer is refused — a wrong
state, a replayed code, another audience, an expired token, an unverified address."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_tracking.extensions import db
from flask_tracking.ops.doctor import Finding, examine
from flask_tracking.users import accounts, audit
from flask_tracking.users.models import OidcIdentity, User
from tests.conftest import PASSWORD
from tests.oidc_provider import Provider

CALLBACK = "http://localhost/login/sso/callback"


@pytest.fixture
def provider() -> Iterator[Provider]:
    served = Provider()
    served.add_client("flask-tracking", "client-secret", CALLBACK)
    yield served
    served.close()


@pytest.fixture
def sso_app(app_factory: Any, provider: Provider) -> Any:
    def factory(**overrides: Any) -> Flask:
        settings = {
            "OIDC_ISSUER": provider.issuer,
            "OIDC_CLIENT_ID": "flask-tracking",
            "OIDC_CLIENT_SECRET": "client-secret",
            "OIDC_NAME": "Test provider",
        }
        return app_factory(**{**settings, **overrides})  # type: ignore[no-any-return]

    return factory


def start(client: FlaskClient, next_url: str = "") -> str:
    """Begin at the login button; return where it sends the browser (the provider)."""
    answer = client.get("/login/sso" + (f"?next={next_url}" if next_url else ""))
    assert answer.status_code == 302, answer.get_data(True)
    return str(answer.headers["Location"])


def at_provider(authorize_url: str, login: str) -> str:
    """Sign in at the provider as `login`; return the callback URL it sends the browser to."""
    browser = requests.Session()
    page = browser.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    answer = browser.post(authorize_url, data={"login": login}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    return location


def come_back(client: FlaskClient, callback_url: str) -> Any:
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def sign_on(client: FlaskClient, login: str, next_url: str = "") -> Any:
    return come_back(client, at_provider(start(client, next_url), login))


def whoami(client: FlaskClient) -> str | None:
    """The email the settings page shows, or None when the browser is not logged in."""
    page = client.get("/settings/")
    if page.status_code != 200:
        return None
    found = re.search(r'name="email"[^>]*value="([^"]+)"', page.get_data(True))
    return found.group(1) if found else ""


def add_user(app: Flask, email: str) -> User:
    """An account registered with a password (and a confirmed address), in this app."""
    with app.app_context():
        user = accounts.register(email, PASSWORD, "Owner", verified=True)
        db.session.refresh(user)
        db.session.expunge(user)
        return user


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_login_page_offers_the_provider_and_the_request_carries_pkce_state_and_nonce(
    sso_app: Any,
) -> None:
    client = sso_app().test_client()
    page = client.get("/login/").get_data(True)
    assert "Log in with Test provider" in page and 'name="password"' in page
    query = parse_qs(urlsplit(start(client)).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == [CALLBACK]
    assert set(query["scope"][0].split()) == {"openid", "email", "profile"}


def test_a_first_sign_on_makes_an_account_and_the_next_finds_it(
    sso_app: Any, provider: Provider
) -> None:
    app = sso_app()
    provider.add_person("ada", "Ada@Example.com", name="Ada")
    client = app.test_client()
    answer = sign_on(client, "ada", next_url="/sites/")
    assert answer.status_code == 302 and answer.headers["Location"] == "/sites/"
    assert whoami(client) == "ada@example.com"
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ada@example.com"))
        assert user is not None and user.name == "Ada" and user.email_verified_at is not None
        assert [e.kind for e in audit.events_of(user.id)] == ["login", "sso_linked"]
        assert audit.events_of(user.id)[0].detail == "single sign-on"
        user_id = user.id
    # No password works for it (it has none), and a second sign-on is the same account.
    other = app.test_client()
    refused = other.post("/login/", data={"email": "ada@example.com", "password": "!sso"})
    assert "Invalid email or password." in refused.get_data(True)
    assert sign_on(other, "ada").status_code == 302
    assert whoami(other) == "ada@example.com"
    assert count(app, User) == 1 and count(app, OidcIdentity) == 1
    settings = other.get("/settings/").get_data(True)
    assert f"Linked to Test provider ({provider.issuer}) since" in settings
    assert "made by single sign-on and has no password" in settings
    with app.app_context():
        identity = db.session.scalar(select(OidcIdentity))
        assert identity is not None and identity.user_id == user_id
        assert identity.issuer == provider.issuer and identity.subject == provider.people["ada"].sub
    assert provider.codes == {}  # every code was exchanged, and so used up


def test_an_existing_account_is_linked_only_by_a_verified_address(
    sso_app: Any, provider: Provider
) -> None:
    app = sso_app()
    owner = add_user(app, "owner@example.com")  # registered with a password
    person = provider.add_person("owner", "owner@example.com", email_verified=False)
    client = app.test_client()
    refused = sign_on(client, "owner")
    assert refused.status_code == 403
    assert "has not verified your email address" in refused.get_data(True)
    assert whoami(client) is None and count(app, OidcIdentity) == 0
    person.email_verified = True
    assert sign_on(client, "owner").status_code == 302
    assert whoami(client) == "owner@example.com"
    assert count(app, User) == 1
    with app.app_context():
        assert db.session.scalar(select(OidcIdentity.user_id)) == owner.id
    # The password still logs in (OIDC_PASSWORD_LOGIN is on by default).
    assert (
        app.test_client()
        .post("/login/", data={"email": "owner@example.com", "password": PASSWORD})
        .status_code
        == 302
    )


def test_an_answer_with_another_state_is_refused(sso_app: Any, provider: Provider) -> None:
    app = sso_app()
    provider.add_person("ada", "ada@example.com")
    client = app.test_client()
    callback = at_provider(start(client), "ada")
    forged = re.sub(r"state=[^&]+", "state=not-the-state", callback)
    answer = come_back(client, forged)
    assert answer.status_code == 400
    assert "its state does not match" in answer.get_data(True)
    assert whoami(client) is None and count(app, User) == 0
    # An answer from a login another browser started is refused the same way (login CSRF).
    stranger = app.test_client()
    assert come_back(stranger, callback).status_code == 400
    assert whoami(stranger) is None


def test_a_code_used_once_is_refused_when_replayed(sso_app: Any, provider: Provider) -> None:
    app = sso_app()
    provider.add_person("ada", "ada@example.com")
    victim = app.test_client()
    callback = at_provider(start(victim), "ada")
    assert come_back(victim, callback).status_code == 302
    # Someone who saw the code (in a log, a Referer) plays it into a login of their own.
    attacker = app.test_client()
    state = parse_qs(urlsplit(start(attacker)).query)["state"][0]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    answer = attacker.get(f"/login/sso/callback?code={code}&state={state}")
    assert answer.status_code == 400
    assert "invalid_grant" in answer.get_data(True)
    assert provider.token_errors == ["invalid_grant"]
    assert whoami(attacker) is None


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({"aud": ["another-client"]}, "&#39;aud&#39;"),
        ({"aud": ["another-client"], "azp": "flask-tracking"}, "&#39;aud&#39;"),  # ours
        ({"iss": "https://impostor.example"}, "iss"),
        ({"exp": int(time.time()) - 3600}, "expired"),
    ],
    ids=["wrong audience", "wrong audience, our azp", "wrong issuer", "expired"],
)
def test_an_id_token_for_someone_else_or_out_of_date_is_refused(
    sso_app: Any, provider: Provider, claims: dict[str, Any], says: str
) -> None:
    app = sso_app()
    provider.add_person("ada", "ada@example.com")
    provider.claims = claims
    client = app.test_client()
    answer = sign_on(client, "ada")
    assert answer.status_code == 400
    assert says in answer.get_data(True)
    assert whoami(client) is None and count(app, User) == 0 and count(app, OidcIdentity) == 0


def test_an_unverified_address_makes_no_account(sso_app: Any, provider: Provider) -> None:
    app = sso_app()
    provider.add_person("eve", "eve@example.com", email_verified=False)
    client = app.test_client()
    answer = sign_on(client, "eve")
    assert answer.status_code == 403
    assert whoami(client) is None and count(app, User) == 0


def test_allowed_domains_and_account_creation_are_the_operators_choice(
    sso_app: Any, provider: Provider
) -> None:
    provider.add_person("ada", "ada@example.com")
    provider.add_person("bob", "bob@example.org")
    app = sso_app(OIDC_ALLOWED_DOMAINS="example.org, example.net", OIDC_CREATE_USERS="false")
    client = app.test_client()
    outside = sign_on(client, "ada")
    assert outside.status_code == 403
    assert "Addresses at example.com cannot log in here." in outside.get_data(True)
    no_account = sign_on(client, "bob")
    assert no_account.status_code == 403
    assert "There is no account for bob@example.org" in no_account.get_data(True)
    assert count(app, User) == 0
    add_user(app, "bob@example.org")
    assert sign_on(client, "bob").status_code == 302
    assert whoami(client) == "bob@example.org"


def test_with_password_login_off_only_the_provider_logs_in(
    sso_app: Any, provider: Provider
) -> None:
    app = sso_app(OIDC_PASSWORD_LOGIN=False)
    add_user(app, "owner@example.com")
    provider.add_person("owner", "owner@example.com")
    client = app.test_client()
    page = client.get("/login/").get_data(True)
    assert "Log in with Test provider" in page and 'name="password"' not in page
    for path, data in [
        ("/login/", {"email": "owner@example.com", "password": PASSWORD}),
        ("/register/", {"email": "new@example.com", "password": PASSWORD, "name": "N"}),
        ("/password/forgot", {"email": "owner@example.com"}),
    ]:
        answer = client.post(path, data=data)
        assert answer.status_code == 403, path
        assert "single sign-on only" in answer.get_data(True)
    assert whoami(client) is None and count(app, User) == 1
    assert sign_on(client, "owner").status_code == 302
    assert whoami(client) == "owner@example.com"


def test_an_account_with_two_factor_still_owes_its_code(sso_app: Any, provider: Provider) -> None:
    app = sso_app()
    owner = add_user(app, "owner@example.com")
    secret = pyotp.random_base32()
    with app.app_context():
        user = db.session.get(User, owner.id)
        assert user is not None
        user.totp_secret = secret
        db.session.commit()
    provider.add_person("owner", "owner@example.com")
    client = app.test_client()
    answer = sign_on(client, "owner", next_url="/sites/")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login/code"
    assert whoami(client) is None
    done = client.post("/login/code", data={"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302 and done.headers["Location"] == "/sites/"
    assert whoami(client) == "owner@example.com"
    with app.app_context():
        user = db.session.get(User, owner.id)
        assert user is not None
        assert audit.events_of(user.id)[0].detail == "single sign-on and a code"


def test_a_provider_that_cannot_be_reached_or_names_another_issuer_is_a_clear_502(
    sso_app: Any, provider: Provider, unused_port: int
) -> None:
    down = sso_app(OIDC_ISSUER=f"http://127.0.0.1:{unused_port}", OIDC_TIMEOUT=2)
    answer = down.test_client().get("/login/sso")
    assert answer.status_code == 502
    assert "could not be reached (ConnectionError)" in answer.get_data(True)
    # Discovery fetched from one address but naming another issuer is refused (OIDC Discovery).
    aliased = sso_app(OIDC_ISSUER=provider.issuer.replace("127.0.0.1", "localhost"))
    answer = aliased.test_client().get("/login/sso")
    assert answer.status_code == 502
    assert "names the issuer" in answer.get_data(True)


def test_a_refusal_at_the_provider_comes_back_as_a_clear_400(
    sso_app: Any, provider: Provider
) -> None:
    client = sso_app().test_client()
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    answer = client.get(
        f"/login/sso/callback?error=access_denied&error_description=No+<b>way</b>&state={state}"
    )
    assert answer.status_code == 400
    # What the provider (or whoever forged the link) says is shown as text, escaped.
    assert "access_denied: No &lt;b&gt;way&lt;/b&gt;" in answer.get_data(True)
    assert "<b>way" not in answer.get_data(True)


def test_without_an_issuer_there_is_no_single_sign_on(client: FlaskClient) -> None:
    assert client.get("/login/sso").status_code == 404
    assert client.get("/login/sso/callback?code=x&state=y").status_code == 404
    assert "Log in with" not in client.get("/login/").get_data(True)


def test_an_issuer_without_a_client_id_stops_the_app(app_factory: Any) -> None:
    with pytest.raises(RuntimeError, match="OIDC_CLIENT_ID"):
        app_factory(OIDC_ISSUER="https://id.example.com")


def sso_finding(app: Flask) -> Finding:
    [finding] = [f for f in examine(app) if f.what == "single sign-on"]
    return finding


def test_doctor_checks_the_provider_and_names_the_redirect_uri(
    sso_app: Any, provider: Provider, unused_port: int, app: Flask
) -> None:
    assert sso_finding(app) == Finding("ok", "single sign-on", "off (OIDC_ISSUER is not set)")
    served = sso_app(PUBLIC_URL="https://stats.example.com/")
    assert sso_finding(served) == Finding(
        "ok",
        "single sign-on",
        f"{provider.issuer} answers; redirect URI to register: "
        "https://stats.example.com/login/sso/callback",
    )
    assert sso_finding(sso_app()).level == "warn"  # no PUBLIC_URL
    down = sso_finding(sso_app(OIDC_ISSUER=f"http://127.0.0.1:{unused_port}"))
    assert down.level == "fail" and "could not be read" in down.detail
    aliased = sso_app(OIDC_ISSUER=provider.issuer.replace("127.0.0.1", "localhost"))
    assert sso_finding(aliased).level == "fail"
    assert "names the issuer" in sso_finding(aliased).detail
