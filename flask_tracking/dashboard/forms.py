"""Forms of the dashboard: creating a shared link, and opening a password-protected one."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

MAX_EMBED_ORIGINS = 20
DEFAULT_MIN_VISITORS = 5


class ShareForm(FlaskForm):
    """Create a shared link, optionally protected by a password."""

    name = StringField(
        "Name (for you, e.g. who it is for)", validators=[Optional(), Length(max=120)]
    )
    password = PasswordField("Password (optional)", validators=[Optional(), Length(max=1024)])
    embed_origins = TextAreaField(
        "Allow embedding on (optional)",
        description="Sites that may show this dashboard in an iframe: one origin a line, "
        "e.g. https://www.example.com. Leave empty and no site can frame it.",
        validators=[Optional(), Length(max=2000)],
    )

    min_visitors = IntegerField(
        "Hide groups smaller than (visitors)",
        description="Rows with fewer visitors are folded into “Other”, and filters that "
        "would leave fewer are refused, so the link never singles anyone out. 1 shows "
        "everything.",
        default=DEFAULT_MIN_VISITORS,
        validators=[Optional(), NumberRange(min=1, max=1000)],
    )

    def validate_embed_origins(self, field: TextAreaField) -> None:
        """Accept only origins: http(s), a host, maybe a port; nothing else."""
        field.data = "\n".join(parse_origins(field.data or ""))

    def validate_password(self, field: PasswordField) -> None:
        """A password, when given, is as long as an account's must be."""
        minimum = int(current_app.config["MIN_PASSWORD_LENGTH"])
        if field.data and len(field.data) < minimum:
            raise ValidationError(f"The password must be at least {minimum} characters long.")


def parse_origins(text: str) -> list[str]:
    """Return the origins written one a line, normalised; raise ValidationError naming a bad one."""
    origins: list[str] = []
    for raw in text.splitlines():
        candidate = raw.strip()
        if not candidate:
            continue
        origin = _origin(candidate)
        if origin is None:
            raise ValidationError(
                f"Not an origin: {candidate[:80]} (write it as https://host or https://host:port)"
            )
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_EMBED_ORIGINS:
        raise ValidationError(f"At most {MAX_EMBED_ORIGINS} origins.")
    return origins


def _origin(text: str) -> str | None:
    """Return scheme://host[:port] when `text` is exactly an http(s) origin, else None.

    Hosts are limited to the characters of domain names and IP addresses, so that an origin
    can never add a directive to the Content-Security-Policy it is written into.
    """
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or parts.username or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    if not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:.]+", host):
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


class UnlockForm(FlaskForm):
    """The password of a protected shared link."""

    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])
