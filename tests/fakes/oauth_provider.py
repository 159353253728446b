"""A fake OAuth 2.0 provider on loopback: Google-like (OpenID Connect) or GitHub-like.

It speaks the real protocol — authorization endpoint with state and PKCE, a token endpoint
that checks the client secret, the code, the redirect URI and the PKCE verifier, RS256-signed
ID tokens with a JWKS, and GitHub's user and emails APIs — so the account app's OAuth client
runs unchanged against it. Whoever the test puts in `next_user` "consents" at /authorize.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


@dataclass
class FakeUser:
    subject: str
    email: str
    email_verified: bool = True
    login: str = "octocat"


@dataclass
class _Grant:
    user: FakeUser
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    used: bool = False


@dataclass
class FakeOAuthProvider:
    kind: str = "oidc"  # oidc (Google-like) | github
    client_id: str = "onekey-test-client"
    client_secret: str = "fake-client-secret"
    next_user: FakeUser | None = None
    deny_next: bool = False
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_errors: list[str] = field(default_factory=list)
    # Misbehaviour for the next ID tokens: claims to override, or a signature by a key not in the JWKS.
    id_token_overrides: dict = field(default_factory=dict)
    sign_with_rogue_key: bool = False

    def __post_init__(self) -> None:
        self._key = RSAKey.generate_key(2048, parameters={"kid": "fake-1", "use": "sig", "alg": "RS256"})
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, FakeUser] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeOAuthProvider:
        provider = self

        class Handler(_Handler):
            fake = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    @property
    def authorize_path(self) -> str:
        return "/authorize" if self.kind == "oidc" else "/login/oauth/authorize"

    def metadata(self) -> dict:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    # -- protocol ----------------------------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str]]:
        """The redirect back to the client (status, headers) for an authorization request."""
        self.authorize_requests.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return 400, {}
        back = {"state": query["state"]} if "state" in query else {}
        if self.deny_next:
            self.deny_next = False
            return 302, {"Location": f"{redirect_uri}?{urlencode({'error': 'access_denied', **back})}"}
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 302, {"Location": f"{redirect_uri}?{urlencode({'error': 'invalid_request', **back})}"}
        if self.next_user is None:
            raise AssertionError("set fake.next_user before signing in")
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._grants[code] = _Grant(self.next_user, query["client_id"], redirect_uri, query["code_challenge"],
                                        query.get("nonce"))
        return 302, {"Location": f"{redirect_uri}?{urlencode({'code': code, **back})}"}

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        self.token_requests.append(form)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return self._token_error("invalid_client", 401)
        with self._lock:
            grant = self._grants.get(form.get("code", ""))
            if grant is None or grant.used:
                return self._token_error("invalid_grant")
            grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._token_error("invalid_grant")
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or challenge != grant.challenge:
            return self._token_error("invalid_grant")
        access = secrets.token_urlsafe(24)
        self._tokens[access] = grant.user
        body = {"access_token": access, "token_type": "Bearer", "expires_in": 3600}
        if self.kind == "oidc":
            body["scope"] = "openid email profile"
            body["id_token"] = self.id_token(grant.user, grant.nonce, self.id_token_overrides)
        else:
            body["scope"] = "read:user,user:email"
        return 200, body

    def _token_error(self, error: str, status: int = 400) -> tuple[int, dict]:
        self.token_errors.append(error)
        return status, {"error": error}

    def id_token(self, user: FakeUser, nonce: str | None, overrides: dict | None = None) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "sub": user.subject, "aud": self.client_id, "iat": now, "exp": now + 600,
                  "email": user.email, "email_verified": user.email_verified}
        if nonce:
            claims["nonce"] = nonce
        claims.update(overrides or {})
        key = RSAKey.generate_key(2048, parameters={"kid": "fake-1"}) if self.sign_with_rogue_key else self._key
        return jwt.encode({"alg": "RS256", "kid": "fake-1"}, claims, key)

    def jwks(self) -> dict:
        return KeySet([self._key]).as_dict(private=False)

    def user_for(self, authorization: str) -> FakeUser | None:
        scheme, _, token = authorization.partition(" ")
        return self._tokens.get(token) if scheme.lower() in ("bearer", "token") else None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOAuthProvider

    def log_message(self, *_args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict | list | str | None = None, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        payload = b""
        if body is not None:
            payload = (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        fake = self.fake
        if parts.path == "/.well-known/openid-configuration" and fake.kind == "oidc":
            return self._send(200, fake.metadata())
        if parts.path == "/jwks" and fake.kind == "oidc":
            return self._send(200, fake.jwks())
        if parts.path == fake.authorize_path:
            status, headers = fake.authorize(query)
            return self._send(status, None, headers)
        user = fake.user_for(self.headers.get("Authorization", ""))
        if parts.path in ("/userinfo", "/user", "/user/emails") and user is None:
            return self._send(401, {"message": "Bad credentials"})
        if parts.path == "/userinfo" and fake.kind == "oidc":
            return self._send(200, {"sub": user.subject, "email": user.email, "email_verified": user.email_verified})
        if parts.path == "/user" and fake.kind == "github":
            return self._send(200, {"id": int(user.subject), "login": user.login, "email": None})
        if parts.path == "/user/emails" and fake.kind == "github":
            return self._send(200, [
                {"email": f"{user.login}@users.noreply.github.com", "primary": False, "verified": True,
                 "visibility": None},
                {"email": user.email, "primary": True, "verified": user.email_verified, "visibility": "private"},
            ])
        self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        token_path = "/token" if self.fake.kind == "oidc" else "/login/oauth/access_token"
        if parts.path != token_path:
            return self._send(404, {"error": "not_found"})
        status, body = self.fake.token(form, self.headers.get("Authorization", ""))
        if self.fake.kind == "github" and "json" not in self.headers.get("Accept", ""):
            # GitHub answers form-encoded unless asked for JSON.
            return self._send(status, urlencode(body), content_type="application/x-www-form-urlencoded")
        self._send(status, body)
