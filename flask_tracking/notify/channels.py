"""Where alerts go, and how they get there: email (through the mail outbox), a generic webhook
signed like Stripe's, and Slack incoming webhooks (Block Kit).

A webhook's body is the alert as JSON; its `Flask-Tracking-Signature` header is
`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the channel's secret>`, so a
receiver checks who sent it and refuses an old message replayed (verify() is the reference).

Targets come from site editors, so they are checked against server-side request forgery: the
host's addresses are resolved and, unless ALERTS_ALLOW_PRIVATE_TARGETS is on, any loopback,
private, link-local, multicast or reserved address refuses the URL. The address checked is
the address connected to (the host is resolved once per delivery and the request goes to that
address, with the name kept for TLS), so a DNS answer that changes in between changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from flask import current_app

from flask_tracking import mail
from flask_tracking.config import as_flag
from flask_tracking.notify.models import AlertChannel

KINDS = {"email": "Email", "webhook": "Webhook (signed JSON)", "slack": "Slack"}
SIGNATURE_HEADER = "Flask-Tracking-Signature"
TOLERANCE = 300  # seconds a signature stays good for verify()
USER_AGENT = "Flask-Tracking-Alerts/1"


class TargetRefused(ValueError):
    """A URL alerts will not be sent to, with the reason."""


class DeliveryFailed(Exception):
    """The receiver did not take the message (an error status or no answer)."""


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """The signature header's value for `body` sent at unix time `at`."""
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: float | None = None) -> bool:
    """What a receiver does: the header's timestamp is recent and one of its v1 signatures
    matches (several v1 values are allowed, for a secret being rotated)."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        at = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - at) > TOLERANCE:
        return False
    expected = sign(secret, body, at).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))


@dataclass(frozen=True)
class Resolved:
    url: str  # the URL with the vetted address in place of the host
    host: str  # the name, for the Host header and TLS


def _allow_private() -> bool:
    return as_flag(current_app.config.get("ALERTS_ALLOW_PRIVATE_TARGETS", False))


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_url(url: str, *, resolve: bool = True) -> Resolved:
    """Refuse a URL alerts must not go to; return it pinned to a vetted address."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise TargetRefused("This is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("Give an http:// or https:// URL.")
    if parts.username or parts.password:
        raise TargetRefused("Put no user name or password in the URL; webhooks are signed.")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    if not resolve:
        return Resolved(url, host)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused(f"{host} does not resolve.") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    if not _allow_private() and any(_refused(a) for a in addresses):
        raise TargetRefused(
            f"{host} is a loopback, private or otherwise internal address: alerts are not "
            "sent there (an operator can allow it with ALERTS_ALLOW_PRIVATE_TARGETS)."
        )
    first = addresses[0]
    pinned = f"[{first}]" if first.version == 6 else str(first)
    netloc = f"{pinned}:{port}"
    return Resolved(urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host)


def check_target(kind: str, target: str) -> str:
    """A channel's target as stored, or TargetRefused with the reason."""
    target = target.strip()
    if kind not in KINDS:
        raise TargetRefused(f"Choose one of {', '.join(KINDS)}.")
    if kind == "email":
        from email_validator import EmailNotValidError, validate_email

        try:
            return str(validate_email(target, check_deliverability=False).normalized)
        except EmailNotValidError as error:
            raise TargetRefused(str(error)) from None
    if len(target) > 2000:
        raise TargetRefused("The URL is too long (2,000 characters at most).")
    check_url(target)
    return target


def _post(channel: AlertChannel, body: bytes, headers: dict[str, str]) -> None:
    resolved = check_url(channel.target)
    timeout = float(current_app.config["ALERTS_TIMEOUT"])
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            answer = client.post(
                resolved.url,
                content=body,
                headers={"Host": resolved.host, "User-Agent": USER_AGENT, **headers},
                extensions={"sni_hostname": resolved.host},
            )
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from None
    if not 200 <= answer.status_code < 300:
        raise DeliveryFailed(f"the receiver answered {answer.status_code}")


def deliver(channel: AlertChannel, message: dict[str, Any]) -> None:
    """Send one message through its channel; DeliveryFailed or TargetRefused if it failed."""
    if channel.kind == "email":
        mail.queue(channel.target, "alert", message["title"], message=message)
        return
    if channel.kind == "slack":
        body = json.dumps(slack_blocks(message)).encode()
        _post(channel, body, {"Content-Type": "application/json"})
        return
    body = json.dumps(message, separators=(",", ":")).encode()
    _post(
        channel,
        body,
        {"Content-Type": "application/json", SIGNATURE_HEADER: sign(channel.secret, body)},
    )


def _mrkdwn(text: str) -> str:
    """Slack's escaping: tracked data (page paths, sources) comes from strangers."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(message: dict[str, Any]) -> dict[str, Any]:
    """The message as a Slack Block Kit payload (with `text` as the notification's fallback)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message["title"][:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(message["text"])}},
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{_mrkdwn(label)}*\n{_mrkdwn(str(value))}"}
        for label, value in message.get("fields", [])
    ][:10]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    for heading, rows in message.get("top", {}).items():
        if rows:
            lines = "\n".join(f"• {_mrkdwn(r['value'])} — {r['visitors']}" for r in rows)
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{heading}*\n{lines}"}}
            )
    if message.get("url"):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the dashboard"},
                        "url": message["url"],
                    }
                ],
            }
        )
    return {"text": message["title"], "blocks": blocks}
