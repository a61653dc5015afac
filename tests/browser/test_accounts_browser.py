"""Accounts as people use them, in real Chromium against a live server, with mail delivered
over SMTP to a real server on loopback (aiosmtpd) and single sign-on through a real OpenID
Connect provider on loopback (tests/oidc_provider.py):

- an owner invites a teammate, who gets the email, registers from its link, accepts, and sees
  the shared site as a viewer who cannot edit it;
- two-factor login turned on by scanning the QR code (decoded from a screenshot of it, as a
  phone would), then logging in with a code, and again with a recovery code;
- a forgotten password reset from the email;
- logging in through the provider;
- a security key added and used to log in, with Chromium's virtual authenticator (DevTools).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import zxingcpp
from aiosmtpd.controller import Controller
from flask import Flask
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from flask_tracking.extensions import db
from flask_tracking.mail import deliver_due
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts, audit, securitykeys
from flask_tracking.users.models import User
from tests.browser.conftest import CHROME, LiveServer, axe_violations
from tests.conftest import PASSWORD
from tests.mailbox import Inbox
from tests.oidc_provider import Provider

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TIMEOUT_MS = 10_000
OWNER = "owner@example.com"


@dataclass
class Served:
    app: Flask
    url: str
    inbox: Inbox
    provider: Provider

    def deliver(self) -> None:
        """Run the writer's mail job once: what is queued goes to the SMTP server."""
        with self.app.app_context():
            deliver_due()


@pytest.fixture
def served(app_factory: Any, unused_port: int) -> Iterator[Served]:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=unused_port)
    smtp.start()
    provider = Provider()
    app = app_factory(
        WTF_CSRF_ENABLED=True,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=unused_port,
        OIDC_ISSUER=provider.issuer,
        OIDC_CLIENT_ID="flask-tracking",
        OIDC_CLIENT_SECRET="client-secret",
        OIDC_NAME="Test provider",
    )
    server = LiveServer(app)
    app.config["PUBLIC_URL"] = server.url  # links in mail point at the live server
    provider.add_client("flask-tracking", "client-secret", f"{server.url}/login/sso/callback")
    with app.app_context():
        accounts.register(OWNER, PASSWORD, "Owner", verified=True)
    try:
        yield Served(app, server.url, inbox, provider)
    finally:
        server.close()
        provider.close()
        smtp.stop()


def new_page(browser: Browser, errors: list[str]) -> Page:
    context = browser.new_context(
        user_agent=CHROME, viewport={"width": 1100, "height": 900}, bypass_csp=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on(
        "console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def accessible(page: Page, seen: dict[str, Any]) -> None:
    """Note axe-core's serious and critical WCAG A/AA violations on the page as it is now."""
    found = axe_violations(page)
    if found:
        seen[urlsplit(page.url).path] = found


def log_in(page: Page, served: Served, email: str = OWNER, password: str = PASSWORD) -> None:
    page.goto(f"{served.url}/login/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")


def log_out(page: Page, served: Served) -> None:
    page.goto(f"{served.url}/logout/")
    page.click("main form button[type=submit]")
    expect(page.get_by_text("You have been logged out.")).to_be_visible()


def test_a_teammate_is_invited_by_email_registers_accepts_and_reads_as_a_viewer(
    browser: Browser, served: Served
) -> None:
    errors: list[str] = []
    with served.app.app_context():
        owner = accounts.find_user(OWNER)
        assert owner is not None
        site = Site(owner_id=owner.id, base_url="https://shop.example", name="Corner Shop")
        db.session.add(site)
        db.session.commit()
        site_id = site.id
    page = new_page(browser, errors)
    log_in(page, served)
    page.goto(f"{served.url}/sites/{site_id}/members")
    invite = page.locator("form:has(input[name=email])")
    invite.locator("input[name=email]").fill("teammate@example.com")
    invite.locator("select[name=role]").select_option("viewer")
    invite.locator("button[type=submit]").click()
    expect(page.get_by_text("teammate@example.com").first).to_be_visible()
    served.deliver()
    link = served.inbox.link("teammate@example.com", f"{served.url}/invitations/")

    teammate = new_page(browser, errors)
    teammate.goto(link)
    expect(teammate.locator("h1")).to_have_text("Join Corner Shop")
    violations: dict[str, Any] = {}
    accessible(teammate, violations)
    teammate.get_by_role("main").get_by_role("link", name="Register").click()
    expect(teammate.locator("input[name=email]")).to_have_value("teammate@example.com")
    teammate.fill("input[name=name]", "Tess")
    teammate.fill("input[name=password]", "a long teammate passphrase")
    teammate.click("main form button[type=submit]")
    accessible(teammate, violations)
    teammate.get_by_role("button", name="Accept the invitation").click()
    expect(teammate.locator("h1")).to_contain_text("Corner Shop")
    assert urlsplit(teammate.url).path == f"/sites/{site_id}"
    # A viewer is shown no way to edit the site, and going there anyway is forbidden.
    expect(teammate.locator(f"a[href='/sites/{site_id}/edit']")).to_have_count(0)
    assert errors == []
    answer = teammate.goto(f"{served.url}/sites/{site_id}/edit")
    assert answer is not None and answer.status == 403
    assert len(errors) == 1 and "status of 403" in errors.pop()  # the page just asked for
    teammate.goto(f"{served.url}/sites/")
    expect(teammate.get_by_text("Corner Shop").first).to_be_visible()
    expect(teammate.get_by_text("Viewer").first).to_be_visible()
    page.goto(f"{served.url}/sites/{site_id}/members")  # with the member and the invitation
    accessible(page, violations)
    assert violations == {}
    assert errors == []


def read_qr(page: Page) -> str:
    """Decode the QR code on the page from a screenshot, as a phone's camera would."""
    shot = page.locator(".qr svg").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))
    assert len(found) == 1, "no QR code could be read from the page"
    return str(found[0].text)


def test_two_factor_from_the_qr_code_then_a_code_then_a_recovery_code(
    browser: Browser, served: Served
) -> None:
    errors: list[str] = []
    page = new_page(browser, errors)
    log_in(page, served)
    page.goto(f"{served.url}/settings/two-factor")
    page.get_by_role("button", name="Set up two-factor login").click()
    violations: dict[str, Any] = {}
    accessible(page, violations)
    uri = read_qr(page)
    assert uri.startswith("otpauth://totp/")
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    totp = pyotp.TOTP(secret)
    page.fill("input[name=code]", totp.now())
    page.get_by_role("button", name="Turn two-factor login on").click()
    expect(page.get_by_role("heading", name="Two-factor login is on")).to_be_visible()
    recovery = page.locator(".recovery-codes code").all_inner_texts()
    assert len(recovery) == 10
    accessible(page, violations)

    log_out(page, served)
    log_in(page, served)
    assert urlsplit(page.url).path == "/login/code"
    accessible(page, violations)
    page.fill("input[name=code]", totp.at(time.time() + 30))  # the next step: not used yet
    page.click("main form button[type=submit]")
    assert urlsplit(page.url).path == "/"
    expect(page.get_by_role("link", name="Settings")).to_be_visible()

    log_out(page, served)
    log_in(page, served)
    page.fill("input[name=code]", recovery[0])
    page.click("main form button[type=submit]")
    expect(page.get_by_text("You used a recovery code: 9 left.")).to_be_visible()
    assert violations == {}
    assert errors == []


def test_a_forgotten_password_is_reset_from_the_email(browser: Browser, served: Served) -> None:
    errors: list[str] = []
    page = new_page(browser, errors)
    page.goto(f"{served.url}/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.fill("input[name=email]", OWNER)
    page.click("main form button[type=submit]")
    served.deliver()
    page.goto(served.inbox.link(OWNER, f"{served.url}/password/reset/"))
    violations: dict[str, Any] = {}
    accessible(page, violations)
    page.fill("input[name=password]", "a brand new passphrase")
    page.fill("input[name=confirm]", "a brand new passphrase")
    page.click("main form button[type=submit]")
    expect(page.get_by_text("Your password is changed.")).to_be_visible()
    log_out(page, served)
    log_in(page, served, password="a brand new passphrase")
    expect(page.get_by_role("link", name="Settings")).to_be_visible()
    assert violations == {}
    assert errors == []


def test_logging_in_through_the_provider(browser: Browser, served: Served) -> None:
    errors: list[str] = []
    served.provider.add_person("ada", "ada@example.com", name="Ada")
    page = new_page(browser, errors)
    page.goto(f"{served.url}/login/")
    violations: dict[str, Any] = {}
    accessible(page, violations)
    page.get_by_role("link", name="Log in with Test provider").click()
    assert page.url.startswith(served.provider.issuer + "/authorize?")
    page.get_by_role("button", name="Sign in as ada@example.com").click()
    expect(page.get_by_role("link", name="Settings")).to_be_visible()
    assert page.url.startswith(served.url)
    page.goto(f"{served.url}/settings/")
    expect(page.get_by_text("Linked to Test provider")).to_be_visible()
    accessible(page, violations)
    # A forged answer is refused with a page that says why (a 400, so one console error).
    page.goto(f"{served.url}/login/sso/callback?code=stolen&state=forged")
    expect(page.locator("h1")).to_have_text("Single sign-on did not work")
    accessible(page, violations)
    assert len(errors) == 1 and "status of 400" in errors.pop()
    assert violations == {}
    assert errors == []


def test_a_security_key_is_added_then_logs_in_with_chromiums_virtual_authenticator(
    browser: Browser, served: Served
) -> None:
    errors: list[str] = []
    secret = pyotp.random_base32()
    with served.app.app_context():
        owner = accounts.find_user(OWNER)
        assert owner is not None
        owner.totp_secret = secret
        owner.totp_enabled_at = datetime.now(UTC)
        db.session.commit()
        owner_id = owner.id
    # WebAuthn takes no IP address as a relying party: the page is on localhost.
    here = replace(served, url=served.url.replace("127.0.0.1", "localhost"))
    served.app.config["PUBLIC_URL"] = here.url
    page = new_page(browser, errors)
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable", {"enableUI": False})
    authenticator = devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": False,
                "hasUserVerification": False,
                "automaticPresenceSimulation": True,
            }
        },
    )["authenticatorId"]
    log_in(page, here)
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("main form button[type=submit]")
    page.goto(f"{here.url}/settings/two-factor")
    page.fill("#key-name", "Desk key")
    page.get_by_role("button", name="Add a security key").click()
    expect(page.get_by_text("Security key “Desk key” added.")).to_be_visible()
    expect(page.locator(".security-keys strong")).to_have_text(["Desk key"])
    violations: dict[str, Any] = {}
    accessible(page, violations)
    [credential] = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})[
        "credentials"
    ]
    with served.app.app_context():
        [stored] = securitykeys.keys_of(db.session.get(User, owner_id))
        assert stored.credential_id == credential["credentialId"].rstrip("=").replace(
            "+", "-"
        ).replace("/", "_")

    log_out(page, here)
    log_in(page, here)
    assert urlsplit(page.url).path == "/login/code"
    accessible(page, violations)
    page.get_by_role("button", name="Use a security key").click()
    expect(page.get_by_role("link", name="Settings")).to_be_visible()
    assert urlsplit(page.url).path == "/"
    with served.app.app_context():
        [stored] = securitykeys.keys_of(db.session.get(User, owner_id))
        assert stored.sign_count >= 1 and stored.last_used_at is not None
        assert audit.events_of(owner_id)[0].detail == "password and a security key (Desk key)"
    assert violations == {}
    assert errors == []
