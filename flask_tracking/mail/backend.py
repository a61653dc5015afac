"""Flask-Mailman's SMTP backend, with the server's certificate always verified.

Its STARTTLS (MAIL_USE_TLS) passes no SSL context, and smtplib then encrypts without checking
who answers: anyone on the path could read the SMTP password and the reset links. Here both
STARTTLS and implicit TLS (MAIL_USE_SSL) check the certificate and the host name against the
system's authorities, or against MAIL_CA_FILE for a relay with a private certificate.
"""

from __future__ import annotations

import smtplib
import ssl
from typing import Any

from flask import current_app
from flask_mailman.backends.smtp import EmailBackend


def verifying_context() -> ssl.SSLContext:
    """A client context that checks the certificate chain and the host name."""
    return ssl.create_default_context(cafile=current_app.config.get("MAIL_CA_FILE") or None)


class _VerifyingSMTP(smtplib.SMTP):
    def starttls(self, *_files: Any, context: ssl.SSLContext | None = None) -> Any:
        # Key and certificate files are client certificates, which MAIL_* never sets.
        return super().starttls(context=context or verifying_context())


class _VerifyingSMTPSSL(smtplib.SMTP_SSL):
    def __init__(
        self,
        host: str = "",
        port: int = 0,
        *,
        context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        super().__init__(host, port, context=context or verifying_context(), **options)


class VerifyingEmailBackend(EmailBackend):
    """MAIL_BACKEND: Flask-Mailman's SMTP backend with verified TLS."""

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return _VerifyingSMTPSSL if self.use_ssl else _VerifyingSMTP

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return verifying_context()
