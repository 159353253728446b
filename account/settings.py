"""The account app's one typed settings object, built from its TOML section and the environment.

This is the only place the account app reads the environment: secrets come in by `*_env`
keys naming an environment variable, and are held as `Secret` so they never print.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration the account app cannot start with; the message names the key."""


class Secret:
    """A string that never prints: repr and str show a mask, reveal() gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


class CoreSettingsLike(Protocol):
    """What the account app takes from the core's settings: where it is and its credential."""

    listen: str
    service_token: Any  # a Secret-like object with reveal()


GOOGLE_METADATA_URL = "https://accounts.google.com/.well-known/openid-configuration"
GITHUB_AUTHORIZE_URL = "https://github.com/login/oauth/authorize"
GITHUB_TOKEN_URL = "https://github.com/login/oauth/access_token"
GITHUB_API_URL = "https://api.github.com/"


@dataclass(frozen=True)
class OAuthProviderSettings:
    """One OAuth provider. Google speaks OIDC (discovery metadata); GitHub plain OAuth 2.0."""

    name: str
    client_id: str
    client_secret: Secret
    metadata_url: str = ""    # OIDC discovery document (Google)
    authorize_url: str = ""   # explicit endpoints (GitHub)
    token_url: str = ""
    api_base_url: str = ""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    starttls: bool = True   # STARTTLS on a plain connection
    ssl: bool = False       # implicit TLS (port 465)
    timeout: float = 15.0


@dataclass(frozen=True)
class BillingSettings:
    """Prepaid credits bought through a payments backend (Stripe Checkout, or none)."""

    backend: str = "none"                  # stripe | none (none: the billing page says so)
    stripe_secret_key: Secret = field(default_factory=lambda: Secret(""))
    stripe_webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    stripe_api_base: str = "https://api.stripe.com"  # a local fake Stripe in tests, never the real one
    stripe_checkout_origin: str = "https://checkout.stripe.com"  # where checkout forms may redirect (CSP)
    stripe_crypto: bool = False            # offer stablecoin payments (Stripe's `crypto` method)
    webhook_tolerance: int = 300           # seconds of clock skew a signed webhook may have
    packs_usd: tuple[int, ...] = (10, 25, 100)
    min_usd: int = 5
    max_usd: int = 1000


@dataclass(frozen=True)
class AssistantSettings:
    """The account assistant: a model reached through OneKey's own edge, paid by a system project."""

    enabled: bool = True
    model: str = "anthropic/claude-haiku-4-5"
    base_url: str = ""                     # the edge's /v1; empty: [account].api_base_url
    api_key: Secret = field(default_factory=lambda: Secret(""))  # empty: a system key made at first use
    budget_usd: int = 10                   # credit of a system project made at first use
    per_minute: int = 5                    # questions per user and minute, shared by replicas (account store)
    timeout: float = 60.0
    max_question_chars: int = 2000


@dataclass(frozen=True)
class AccountSettings:
    listen: str = "127.0.0.1:5000"
    database_url: str = "sqlite:///.onekey/account.db"
    public_url: str = "http://127.0.0.1:5000"   # where users reach the app: links in mail, OAuth redirects
    api_base_url: str = "http://127.0.0.1:8080/v1"  # the edge, as shown in the Quick start panel
    core: str = "127.0.0.1:50051"
    core_timeout: float = 5.0                 # seconds one call to the core may take
    store_timeout: float = 2.0                # PostgreSQL: connecting, and each answer (see make_engine)
    service_token: Secret = field(default_factory=lambda: Secret(""))
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    cookie_secure: bool = False
    session_lifetime: float = 12 * 3600.0
    proxy_count: int = 0                    # trusted reverse proxies in front (X-Forwarded-For)
    mail_from: str = "OneKey <no-reply@localhost>"
    smtp: SmtpSettings | None = None
    mail_dir: str = ".onekey/mail"          # with no SMTP server, mail is written here as .eml files
    magic_link_ttl: float = 600.0
    magic_link_window: float = 3600.0
    magic_link_per_email: int = 5           # mails to one address in a window, whoever asks (then silent)
    magic_link_per_email_ip: int = 5        # links one requester may ask for one address (then 429)
    magic_link_per_ip: int = 20             # links one requester may ask for, any addresses (then 429)
    first_project_free_requests: int = 20
    google: OAuthProviderSettings | None = None
    github: OAuthProviderSettings | None = None
    shutdown_timeout: float = 10.0
    threads: int = 8
    billing: BillingSettings = field(default_factory=BillingSettings)
    assistant: AssistantSettings = field(default_factory=AssistantSettings)

    @property
    def oauth_providers(self) -> tuple[OAuthProviderSettings, ...]:
        return tuple(p for p in (self.google, self.github) if p is not None)


# The keys the [account] table may hold; the launcher refuses any other by name.
_TYPES: dict[str, type | tuple[type, ...]] = {
    "listen": str, "database_url": str, "public_url": str, "api_base_url": str, "core": str,
    "core_timeout": (int, float), "store_timeout": (int, float), "service_token_env": str, "secret_key_env": str,
    "cookie_secure": bool, "session_lifetime": (int, float), "proxy_count": int,
    "mail_from": str, "mail_dir": str, "smtp_host": str, "smtp_port": int, "smtp_username": str,
    "smtp_password_env": str, "smtp_starttls": bool, "smtp_ssl": bool, "smtp_timeout": (int, float),
    "magic_link_ttl": (int, float), "magic_link_window": (int, float), "magic_link_per_email": int,
    "magic_link_per_email_ip": int, "magic_link_per_ip": int, "first_project_free_requests": int,
    "google_client_id": str, "google_client_secret_env": str, "google_metadata_url": str,
    "github_client_id": str, "github_client_secret_env": str, "github_authorize_url": str,
    "github_token_url": str, "github_api_url": str, "shutdown_timeout": (int, float), "threads": int,
    "payments": str, "stripe_secret_key_env": str, "stripe_webhook_secret_env": str, "stripe_api_base": str,
    "stripe_checkout_origin": str,
    "stripe_crypto": bool, "stripe_webhook_tolerance": int, "credit_packs_usd": list, "checkout_min_usd": int,
    "checkout_max_usd": int,
    "assistant_enabled": bool, "assistant_model": str, "assistant_base_url": str, "assistant_api_key_env": str,
    "assistant_budget_usd": int, "assistant_per_minute": int,
    "assistant_timeout": (int, float),
}
ACCOUNT_KEYS = frozenset(_TYPES)


def _get(section: Mapping[str, Any], key: str, default: Any) -> Any:
    value = section.get(key, default)
    kinds = _TYPES[key] if isinstance(_TYPES[key], tuple) else (_TYPES[key],)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"[account].{key} must be {expected}, not {type(value).__name__}")
    return value


def _secret(section: Mapping[str, Any], key: str, env: Mapping[str, str], default_var: str = "") -> Secret:
    """The secret held by the environment variable that `key` names (or default_var)."""
    var = _get(section, key, default_var)
    if not var:
        return Secret("")
    value = env.get(var, "")
    if key in section and not value:
        raise ConfigError(f"[account].{key}: environment variable {var} is not set")
    return Secret(value)


def _http_url(key: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"[account].{key} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _oauth(section: Mapping[str, Any], env: Mapping[str, str], name: str) -> OAuthProviderSettings | None:
    client_id = _get(section, f"{name}_client_id", "")
    if not client_id:
        return None
    secret_key = f"{name}_client_secret_env"
    secret = _secret(section, secret_key, env, f"ONEKEY_{name.upper()}_CLIENT_SECRET")
    if not secret:
        raise ConfigError(f"[account].{name}_client_id is set but its secret is not: set {secret_key} "
                          f"or ONEKEY_{name.upper()}_CLIENT_SECRET")
    if name == "google":
        return OAuthProviderSettings(
            name=name, client_id=client_id, client_secret=secret,
            metadata_url=_http_url("google_metadata_url", _get(section, "google_metadata_url", GOOGLE_METADATA_URL)))
    return OAuthProviderSettings(
        name=name, client_id=client_id, client_secret=secret,
        authorize_url=_http_url("github_authorize_url", _get(section, "github_authorize_url", GITHUB_AUTHORIZE_URL)),
        token_url=_http_url("github_token_url", _get(section, "github_token_url", GITHUB_TOKEN_URL)),
        api_base_url=_http_url("github_api_url", _get(section, "github_api_url", GITHUB_API_URL)) + "/")


def _smtp(section: Mapping[str, Any], env: Mapping[str, str]) -> SmtpSettings | None:
    host = _get(section, "smtp_host", "")
    if not host:
        return None
    ssl = _get(section, "smtp_ssl", False)
    return SmtpSettings(
        host=host, port=_get(section, "smtp_port", 465 if ssl else 587),
        username=_get(section, "smtp_username", ""),
        password=_secret(section, "smtp_password_env", env),
        starttls=_get(section, "smtp_starttls", not ssl), ssl=ssl,
        timeout=float(_get(section, "smtp_timeout", 15.0)),
    )


def _billing(section: Mapping[str, Any], env: Mapping[str, str]) -> BillingSettings:
    """Stripe when a secret key is there (or `payments = "stripe"` insists on one); else none."""
    defaults = BillingSettings()
    key = _secret(section, "stripe_secret_key_env", env, "STRIPE_SECRET_KEY")
    backend = _get(section, "payments", "stripe" if key else "none")
    if backend not in ("stripe", "none"):
        raise ConfigError(f"[account].payments must be \"stripe\" or \"none\", not {backend!r}")
    webhook = _secret(section, "stripe_webhook_secret_env", env, "STRIPE_WEBHOOK_SECRET")
    if backend == "stripe" and not (key and webhook):
        raise ConfigError("[account].payments is \"stripe\" but its secrets are not set: set stripe_secret_key_env "
                          "and stripe_webhook_secret_env (or STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)")
    packs = _get(section, "credit_packs_usd", list(defaults.packs_usd))
    low, high = _get(section, "checkout_min_usd", defaults.min_usd), _get(section, "checkout_max_usd", defaults.max_usd)
    if not 1 <= low <= high:
        raise ConfigError("[account].checkout_min_usd must be at least 1 and at most checkout_max_usd")
    if not all(isinstance(p, int) and not isinstance(p, bool) and low <= p <= high for p in packs):
        raise ConfigError("[account].credit_packs_usd must be whole dollar amounts within the checkout limits")
    tolerance = _get(section, "stripe_webhook_tolerance", defaults.webhook_tolerance)
    if tolerance <= 0:
        raise ConfigError("[account].stripe_webhook_tolerance must be positive")
    return BillingSettings(
        backend=backend, stripe_secret_key=key, stripe_webhook_secret=webhook,
        stripe_api_base=_http_url("stripe_api_base", _get(section, "stripe_api_base", defaults.stripe_api_base)),
        stripe_checkout_origin=_http_url("stripe_checkout_origin",
                                         _get(section, "stripe_checkout_origin", defaults.stripe_checkout_origin)),
        stripe_crypto=_get(section, "stripe_crypto", False), webhook_tolerance=tolerance,
        packs_usd=tuple(packs), min_usd=low, max_usd=high)


def _assistant(section: Mapping[str, Any], env: Mapping[str, str]) -> AssistantSettings:
    defaults = AssistantSettings()
    base_url = _get(section, "assistant_base_url", "")
    values = {name: _get(section, f"assistant_{name}", getattr(defaults, name))
              for name in ("enabled", "model", "budget_usd", "per_minute")}
    if values["per_minute"] < 1 or values["budget_usd"] < 0:
        raise ConfigError("[account].assistant_per_minute must be at least 1, assistant_budget_usd not negative")
    return AssistantSettings(
        base_url=_http_url("assistant_base_url", base_url) if base_url else "",
        api_key=_secret(section, "assistant_api_key_env", env),
        timeout=float(_get(section, "assistant_timeout", defaults.timeout)), **values)


def _derived_secret_key(service_token: Secret) -> Secret:
    """A signing key every replica derives alike from the shared service credential."""
    if not service_token:
        return Secret("")
    digest = hmac.new(service_token.reveal().encode(), b"onekey-account-secret-key", hashlib.sha256)
    return Secret(digest.hexdigest())


def load_account_settings(section: Mapping[str, Any], core_settings: CoreSettingsLike,
                          env: Mapping[str, str]) -> AccountSettings:
    """AccountSettings from the [account] table, the core's address and credential, and the env."""
    unknown = sorted(set(section) - ACCOUNT_KEYS)
    if unknown:
        raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} in [account]: {', '.join(unknown)}")
    defaults = AccountSettings()
    listen = _get(section, "listen", defaults.listen)
    host, _, port = listen.rpartition(":")
    public_url = _http_url("public_url", _get(section, "public_url", f"http://{host or '127.0.0.1'}:{port}"))
    token = _secret(section, "service_token_env", env) if "service_token_env" in section else \
        Secret(core_settings.service_token.reveal() if core_settings.service_token else "")
    if not token:
        raise ConfigError("[account] has no service credential: set service_token_env or the core's token")
    secret_key = _secret(section, "secret_key_env", env) if "secret_key_env" in section else _derived_secret_key(token)
    values = {
        name: _get(section, name, getattr(defaults, name))
        for name in ("database_url", "api_base_url", "mail_from", "mail_dir", "proxy_count",
                     "magic_link_per_email", "magic_link_per_email_ip", "magic_link_per_ip",
                     "first_project_free_requests", "threads")
    }
    floats = {
        name: float(_get(section, name, getattr(defaults, name)))
        for name in ("core_timeout", "store_timeout", "session_lifetime", "magic_link_ttl", "magic_link_window", "shutdown_timeout")
    }
    if min(values["magic_link_per_email"], values["magic_link_per_email_ip"], values["magic_link_per_ip"]) < 1:
        raise ConfigError("[account].magic_link_per_email, magic_link_per_email_ip and magic_link_per_ip "
                          "must be at least 1")
    if floats["core_timeout"] <= 0 or floats["store_timeout"] <= 0:
        raise ConfigError("[account].core_timeout and store_timeout must be positive")
    if values["first_project_free_requests"] < 0:
        raise ConfigError("[account].first_project_free_requests cannot be negative")
    return AccountSettings(
        listen=listen, public_url=public_url, core=_get(section, "core", core_settings.listen),
        service_token=token, secret_key=secret_key,
        cookie_secure=_get(section, "cookie_secure", public_url.startswith("https://")),
        smtp=_smtp(section, env), google=_oauth(section, env, "google"), github=_oauth(section, env, "github"),
        billing=_billing(section, env), assistant=_assistant(section, env),
        **{**values, "api_base_url": _http_url("api_base_url", values["api_base_url"])}, **floats,
    )
