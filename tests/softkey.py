"""A software security key for the WebAuthn tests that need no browser: it answers the
server's options the way an authenticator and a browser do together (an ES256 key pair, "none"
attestation, a signature counter), and can be made to misbehave (another origin, a counter
that goes back)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url

USER_PRESENT, ATTESTED = 0x01, 0x40


class SoftKey:
    def __init__(self, origin: str = "http://localhost") -> None:
        self.origin = origin
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0

    @property
    def id(self) -> str:
        return bytes_to_base64url(self.credential_id)

    def _cose_public_key(self) -> bytes:
        numbers = self.private.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _authenticator_data(self, rp_id: str, attested: bool) -> bytes:
        flags = USER_PRESENT | (ATTESTED if attested else 0)
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags])
        data += self.sign_count.to_bytes(4, "big")
        if attested:
            data += bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
            data += self._cose_public_key()
        return data

    def _client_data(self, kind: str, options: dict[str, Any]) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": options["challenge"], "origin": self.origin}
        ).encode()

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """navigator.credentials.create(): a new credential, attested with "none"."""
        auth_data = self._authenticator_data(options["rp"]["id"], attested=True)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(self._client_data("webauthn.create", options)),
                "attestationObject": bytes_to_base64url(attestation),
                "transports": ["usb"],
            },
            "clientExtensionResults": {},
        }

    def get(self, options: dict[str, Any]) -> dict[str, Any]:
        """navigator.credentials.get(): the challenge signed, the counter one higher."""
        self.sign_count += 1
        auth_data = self._authenticator_data(options["rpId"], attested=False)
        client_data = self._client_data("webauthn.get", options)
        signature = self.private.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "authenticatorData": bytes_to_base64url(auth_data),
                "signature": bytes_to_base64url(signature),
            },
            "clientExtensionResults": {},
        }
