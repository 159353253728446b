"""The models page (the core's catalog, with prices and status), the docs page and /favicon.ico.

Both pages are open to anyone: they describe the service, not an account.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, send_from_directory
from markupsafe import Markup, escape

from account.core_client import CoreError
from account.dashboard.quick_start import SANDBOX, served_model
from account.web import context

bp = Blueprint("pages", __name__)

# What a status means to someone choosing a model (the core may send its own note as well).
STATUS_LABELS = {
    "available": "available",
    "preview": "preview: may be briefly unavailable",
    "no_channel": "not offered here (no provider channel)",
    "degraded": "degraded: errors or slow answers right now",
    "retired": "retired",
}
PROVIDERS = {"openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "xai": "xAI", "sandbox": "Sandbox"}


def per_million(micro: int) -> str:
    """Micro-USD per million tokens as dollars: 2_500_000 -> '$2.50', 75_000 -> '$0.075'."""
    whole, frac = divmod(micro, 1_000_000)
    digits = f"{frac:06d}".rstrip("0")
    return f"${whole}.{digits.ljust(2, '0')}"


USABLE = ("available", "preview", "degraded")  # a channel here serves them (degraded: failing just now)


@bp.get("/models")
def models():
    """The catalog, usable models first; `?usable=1` keeps only those and `?q=` filters by id or
    name (a plain GET form: it works without script)."""
    query = request.args.get("q", "").strip()[:100]
    usable_only = request.args.get("usable") == "1"
    try:
        catalog = context().core.models()
    except CoreError as exc:
        return render_template("pages/models.html", core_error=str(exc), groups=[], query=query,
                               usable_only=usable_only), 503
    usable_count = sum(1 for m in catalog if m.status in USABLE)
    shown = [m for m in catalog if (not usable_only or m.status in USABLE)
             and (not query or query.casefold() in f"{m.id} {m.name}".casefold())]
    groups = []
    for provider, label in PROVIDERS.items():
        rows = sorted((m for m in shown if m.provider == provider), key=lambda m: (m.status not in USABLE, m.id))
        if rows:
            groups.append((label, rows, sum(1 for m in rows if m.status in USABLE)))
    groups.sort(key=lambda g: g[2] == 0)  # providers with a usable model first (stable: the usual order)
    sources = sorted({m.price_source for m in catalog if m.price_source and m.price_source != "operator file"})
    return render_template("pages/models.html", core_error=None, groups=groups, labels=STATUS_LABELS,
                           count=len(catalog), usable_count=usable_count, shown_count=len(shown), query=query,
                           usable_only=usable_only, price_sources=sources)


@bp.app_template_filter("code_spans")
def code_spans(text: str) -> Markup:
    """A note's Markdown `code` spans as <code>, everything else escaped."""
    parts = escape(text).split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: show the text as it is
        return escape(text)
    return Markup("").join(Markup("<code>%s</code>") % p if i % 2 else p for i, p in enumerate(parts))


@bp.get("/docs")
def docs():
    try:
        model = served_model(context().core.models())
    except CoreError:
        model = SANDBOX  # the examples still read right; the sandbox is always there
    base_url = context().settings.api_base_url
    return render_template("pages/docs.html", base_url=base_url, model=model,
                           anthropic_base_url=base_url.removesuffix("/").removesuffix("/v1"))


@bp.get("/favicon.ico")
def favicon():
    return send_from_directory(current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon",
                               max_age=86400)
