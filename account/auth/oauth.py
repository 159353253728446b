"""The OAuth providers: registration with Authlib (state, PKCE S256, OIDC nonce) and profiles.

Authlib, with the requests and cryptography packages it brings (about 15 MiB), is imported by the
first sign-in through a provider, not by an idle app.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from account.settings import AccountSettings

if TYPE_CHECKING:
    from authlib.integrations.flask_client import OAuth
    from flask import Flask

LABELS = {"google": "Google", "github": "GitHub"}


@dataclass(frozen=True)
class Profile:
    """What a provider says about the person signing in."""

    provider: str
    subject: str          # the provider's stable user id
    email: str            # lower-cased; "" when the provider gave none
    email_verified: bool  # the provider vouches the person controls this address


class ProfileError(Exception):
    """The provider's answer lacks what sign-in needs."""


class OAuthClients:
    """The configured providers' Authlib clients, registered on first use."""

    def __init__(self, app: Flask, settings: AccountSettings) -> None:
        self._app = app
        self._settings = settings
        self._oauth: OAuth | None = None
        self._lock = threading.Lock()  # waitress serves requests from several threads

    @property
    def names(self) -> tuple[str, ...]:
        """The providers configured on this install."""
        return tuple(p.name for p in self._settings.oauth_providers)

    def create_client(self, name: str):
        """The provider's client; None when it is not configured."""
        if name not in self.names:
            return None
        with self._lock:
            if self._oauth is None:
                from authlib.integrations.flask_client import OAuth

                oauth = OAuth(self._app)
                register_providers(oauth, self._settings)
                self._oauth = oauth
        return self._oauth.create_client(name)


def register_providers(oauth: OAuth, settings: AccountSettings) -> None:
    for p in settings.oauth_providers:
        if p.metadata_url:  # OpenID Connect: endpoints and signing keys come from discovery
            oauth.register(p.name, client_id=p.client_id, client_secret=p.client_secret.reveal(),
                           server_metadata_url=p.metadata_url,
                           client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256",
                                          "default_timeout": 10})
        else:
            oauth.register(p.name, client_id=p.client_id, client_secret=p.client_secret.reveal(),
                           authorize_url=p.authorize_url, access_token_url=p.token_url,
                           api_base_url=p.api_base_url,
                           client_kwargs={"scope": "read:user user:email", "code_challenge_method": "S256",
                                          "default_timeout": 10})


def profile_from(provider: str, client, token: dict) -> Profile:
    """The verified identity behind a token: ID token claims (OIDC) or the GitHub user API."""
    if "userinfo" in token:  # Authlib verified the ID token's signature, issuer, audience and nonce
        claims = token["userinfo"]
        if not claims.get("sub"):
            raise ProfileError("the ID token has no subject")
        return Profile(provider, str(claims["sub"]), str(claims.get("email") or "").strip().lower(),
                       claims.get("email_verified") is True)
    user = client.get("user", token=token, timeout=10)
    user.raise_for_status()
    subject = user.json().get("id")
    if subject is None:
        raise ProfileError("the provider returned no user id")
    emails = client.get("user/emails", token=token, timeout=10)
    emails.raise_for_status()
    verified = [e for e in emails.json() if isinstance(e, dict) and e.get("verified") and e.get("email")]
    verified.sort(key=lambda e: not e.get("primary"))  # the primary address first
    if verified:
        return Profile(provider, str(subject), str(verified[0]["email"]).strip().lower(), True)
    return Profile(provider, str(subject), str(user.json().get("email") or "").strip().lower(), False)
