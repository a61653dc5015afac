"""Single sign-on: off to the OpenID Connect provider, and back with who logged in.

Authlib makes the request (discovery, PKCE S256, `state` and `nonce` kept in the session) and
checks the answer (the code exchanged once, the ID token's signature against the provider's
keys, its issuer, audience, expiry and nonce); users/sso.py decides which account it is. A
failure of any check is a 400 page saying what failed, and changes nothing.
"""

from __future__ import annotations

from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from flask import Blueprint, abort, current_app, render_template, request, session
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from flask_tracking.extensions import db
from flask_tracking.urls import is_safe_redirect
from flask_tracking.users import emails, sso
from flask_tracking.users.views import finish_login

single_sign_on = Blueprint("sso", __name__)

NEXT = "sso_next"  # session key: where to go after logging in


def _failed(reason: str, status: int = 400) -> tuple[str, int]:
    current_app.logger.info("single sign-on refused: %s", reason)
    return render_template("users/sso_failed.html", reason=reason), status


@single_sign_on.route("/login/sso")
def start() -> Response | tuple[str, int]:
    """Send the browser to the provider's login, with a fresh state, nonce and PKCE challenge."""
    if not sso.enabled():
        abort(404)
    client = sso.client()
    try:
        sso.check_issuer(client.load_server_metadata())
        next_url = request.args.get("next")
        session[NEXT] = next_url if is_safe_redirect(next_url) else None
        response: Response = client.authorize_redirect(emails.link("sso.callback"))
    except sso.Refused as refused:
        return _failed(str(refused), 502)
    except (requests.RequestException, ValueError) as error:
        return _failed(f"The sign-on provider could not be reached ({type(error).__name__}).", 502)
    return response


@single_sign_on.route("/login/sso/callback")
def callback() -> Response | tuple[str, int]:
    """The provider sends the browser back here with a code: exchange it, check the ID token,
    and log into the account it names (after the second factor, when the account has one)."""
    if not sso.enabled():
        abort(404)
    client = sso.client()
    try:
        token: dict[str, Any] = client.authorize_access_token(claims_options=_claims_options())
    except (requests.RequestException, ValueError) as error:
        return _failed(f"The sign-on provider could not be reached ({type(error).__name__}).", 502)
    except (AuthlibBaseError, JoseError) as error:
        return _failed(_explain(error))
    claims = token.get("userinfo")
    if not claims:
        return _failed("The provider's answer held no ID token.")
    try:
        user = sso.user_for(sso.Identity.from_claims(current_app.config["OIDC_ISSUER"], claims))
    except sso.Refused as refused:
        db.session.rollback()
        return _failed(str(refused), 403)
    db.session.commit()
    return finish_login(user, session.pop(NEXT, None), "single sign-on")


def _claims_options() -> dict[str, Any]:
    """What the ID token must say (OpenID Connect Core 3.1.3.7): issued by the configured
    issuer, for this client among its audiences. Authlib checks the issuer of the discovery
    document, and the audience only through `azp`, which lets a token for another client
    with our id as `azp` through; this closes that."""
    return {
        "iss": {"essential": True, "value": current_app.config["OIDC_ISSUER"]},
        "aud": {"essential": True, "value": current_app.config["OIDC_CLIENT_ID"]},
    }


def _explain(error: Exception) -> str:
    """Say which check failed, in words: the state, the code, or a claim of the ID token."""
    name = type(error).__name__
    if name == "MismatchingStateError":
        return (
            "This sign-on answer does not belong to a login started in this browser (its "
            "state does not match). Start again from the login page."
        )
    description = getattr(error, "description", None) or str(error)
    code = getattr(error, "error", None) or name
    return f"The provider's answer was refused ({code}: {description})."
