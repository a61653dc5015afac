"""A real OpenID Connect provider for the single sign-on tests, built from Authlib's
authorization-server components and served over HTTP on loopback (tests/live.py).

It does what a provider does: discovery, a login page, the authorization code grant with PKCE
(required) and nonce (required), codes that work once, ID tokens signed RS256 with a key
published at its JWKS URL. Its knobs let a test make it misbehave the ways a real provider or
an attacker's could: `claims` overrides what the next ID tokens say (another audience, an
expiry in the past, an unverified address).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from markupsafe import escape

from tests.live import LiveServer


@dataclass
class Person:
    """An account at the provider."""

    sub: str
    email: str
    name: str = ""
    email_verified: bool = True


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in {"openid", "email", "profile"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    """An issued authorization code and what it was issued for."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    person: Person
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class Provider:
    """The provider's state (people, clients, live codes) and its HTTP server."""

    def __init__(self) -> None:
        self.people: dict[str, Person] = {}
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.claims: dict[str, Any] = {}  # overrides for the next ID tokens
        self.token_errors: list[str] = []  # what the token endpoint refused, in order
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
        self.app = self._build()
        self.server = LiveServer(self.app)
        self.issuer = self.server.url

    def close(self) -> None:
        self.server.close()

    def add_client(self, client_id: str, secret: str, redirect_uri: str) -> None:
        self.clients[client_id] = Client(client_id, secret, [redirect_uri])

    def add_person(self, login: str, email: str, **details: Any) -> Person:
        person = Person(sub=f"sub-{login}-{secrets.token_hex(4)}", email=email, **details)
        self.people[login] = person
        return person

    def _build(self) -> Flask:
        app = Flask("oidc_provider")
        app.config["SECRET_KEY"] = secrets.token_hex(16)
        server = AuthorizationServer(
            app, query_client=self.clients.get, save_token=lambda token, request: None
        )
        server.register_grant(code_grant(self), [CodeChallenge(required=True), IdTokens(self)])
        provider = self

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            base = provider.issuer
            return jsonify(
                issuer=base,
                authorization_endpoint=f"{base}/authorize",
                token_endpoint=f"{base}/token",
                jwks_uri=f"{base}/jwks",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
                token_endpoint_auth_methods_supported=["client_secret_basic"],
                scopes_supported=["openid", "email", "profile"],
            )

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify(keys=[provider.key.as_dict(private=False)])

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize() -> Any:
            if request.method == "GET":
                server.get_consent_grant(end_user=None)  # a bad request fails here, as a 500
                buttons = "".join(
                    f'<button name="login" value="{escape(login)}">Sign in as '
                    f"{escape(person.email)}</button>"
                    for login, person in provider.people.items()
                )
                return (
                    "<!doctype html><title>Provider</title><link rel=icon href=data:,>"
                    f"<form method=post>{buttons}</form>"
                )
            person = provider.people.get(request.form.get("login", ""))
            grant = server.get_consent_grant(end_user=person)
            return server.create_authorization_response(grant=grant, grant_user=person)

        @app.post("/token")
        def token() -> Any:
            response = server.create_token_response()
            if response.status_code != 200:
                provider.token_errors.append(response.get_json().get("error", ""))
            return response

        return app


def code_grant(provider: Provider) -> type:
    """The authorization code grant, keeping its codes in the provider (each works once)."""

    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

        def save_authorization_code(self, code: str, request: Any) -> None:
            data = request.payload.data
            provider.codes[code] = Code(
                code=code,
                client_id=request.client.client_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.payload.scope,
                person=request.user,
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
            )

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            found = provider.codes.get(code)
            if found is None or found.client_id != client.client_id:
                return None
            return found

        def delete_authorization_code(self, authorization_code: Code) -> None:
            provider.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> Person:
            return authorization_code.person

    return CodeGrant


class IdTokens(OpenIDCode):  # type: ignore[misc]
    """ID tokens signed with the provider's key; nonce required; `provider.claims` wins."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return any(c.nonce == nonce for c in self.provider.codes.values())

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider.key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": "test-key"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.provider.issuer, "aud": [client.client_id], "exp": now + 300}
        claims.update(self.provider.claims)  # the person's claims below win over these
        return claims

    def generate_user_info(self, user: Person, scope: str) -> UserInfo:
        info = UserInfo(sub=user.sub, name=user.name)
        if "email" in scope:
            info["email"] = user.email
            info["email_verified"] = user.email_verified
        info.update({k: v for k, v in self.provider.claims.items() if k in info})
        return info
