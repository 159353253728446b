"""What the assistant may know: the signed-in user's own account, read from the account store and
the core's MeteringService/AdminService. Never another user's data, never request content (the
account layer has none), never a key's secret."""
from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy.orm import Session

from account.core_client import CoreClient, CoreError
from account.store.repositories import ProjectRepository, PurchaseRepository
from account.web import usd

MAX_PROJECTS = 10
DAYS = 30
EVENTS = 500

HELP = """How OneKey works (for answering how-to questions):
- One API key and one base URL reach 40+ models of OpenAI, Anthropic, Google and xAI through the standard
  OpenAI API. Any OpenAI SDK works: set base_url to the OneKey base URL and api_key to a OneKey key.
- Models are named provider/model, e.g. openai/gpt-5, anthropic/claude-sonnet-4-6, google/gemini-2.5-pro,
  xai/grok-4; the provider's own id (e.g. claude-sonnet-4-6) works where it is unique. GET /v1/models says
  for each model whether it answers on this OneKey (status available, preview, degraded, no_channel or
  retired, with a status_note); a model without a channel here answers 404 model_not_available.
- Endpoints: POST /v1/chat/completions (streaming or not), POST /v1/responses, GET /v1/models.
- Calling Claude from the OpenAI Python SDK:
    from openai import OpenAI
    client = OpenAI(base_url="{base_url}", api_key="YOUR_ONEKEY_KEY")
    reply = client.chat.completions.create(model="anthropic/claude-haiku-4-5",
                                           messages=[{{"role": "user", "content": "Hello"}}])
- Keys are made and revoked on a project's Keys page; a key's secret is shown once. A revoked key stops
  working within seconds.
- A project spends prepaid credit (bought on its Billing page by card, Apple Pay, Google Pay or, where enabled,
  stablecoins); a new account gets 20 free requests. Out of credit, requests get HTTP 402 insufficient_quota.
- OneKey stores request metadata only (model, tokens, cost, status, timings), never prompts or completions."""


def _project_facts(db: Session, core: CoreClient, project, start: dt.datetime, end: dt.datetime) -> list[str]:
    lines = [f"Project \"{project.name}\" (id {project.id}):"]
    try:
        balance = core.balance(project.id)
        keys = core.list_keys(project.id)
        by_day, total = core.usage(project.id, start, end, "day")
        by_model, _ = core.usage(project.id, start, end, "model")
        by_key, _ = core.usage(project.id, start, end, "key")
        events = core.recent_events(project.id, start, end, limit=EVENTS)
    except CoreError as exc:
        return lines + [f"  (usage and balance unavailable: {exc})"]
    names = {k.id: f"\"{k.name}\" ({k.prefix}…)" for k in keys}
    lines.append(f"  balance {usd(balance.balance_micro_usd)}, free requests left {balance.free_requests}")
    lines.append(f"  last {DAYS} days: {total.requests} requests, {total.input_tokens} input and "
                 f"{total.output_tokens} output tokens, charged {usd(total.charged_micro_usd)}")
    for r in by_day:
        if r.requests:
            lines.append(f"  day {r.group}: {r.requests} requests, charged {usd(r.charged_micro_usd)}")
    for r in by_model:
        lines.append(f"  model {r.group}: {r.requests} requests, {r.input_tokens} in / {r.output_tokens} out "
                     f"tokens, charged {usd(r.charged_micro_usd)}")
    for r in by_key:
        lines.append(f"  key {names.get(r.group, 'a deleted key')}: {r.requests} requests, "
                     f"charged {usd(r.charged_micro_usd)}")
    pairs = Counter((e.key_id, e.model) for e in events)
    for (key_id, model), count in pairs.most_common(10):
        lines.append(f"  recent {len(events)} requests: key {names.get(key_id, 'a deleted key')} used {model} "
                     f"{count} times")
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        used = f"last used {k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never used"
        lines.append(f"  key {names[k.id]}: {state}, created {k.created_at:%Y-%m-%d}, {used}")
    for p in PurchaseRepository(db).for_project(project.id, limit=10):
        refunded = f", refunded ${p.refunded_cents / 100:.2f}" if p.refunded_cents else ""
        lines.append(f"  purchase {p.created_at:%Y-%m-%d %H:%M}: ${p.amount_cents // 100}.{p.amount_cents % 100:02d} "
                     f"credit, {p.status.replace('_', ' ')}{refunded}")
    return lines


def account_facts(db: Session, core: CoreClient, user_id: str, current_project_id: str | None,
                  now: dt.datetime) -> str:
    """The user's own projects, balances, usage, keys (names and prefixes) and purchases, as text."""
    projects = ProjectRepository(db).owned_by(user_id)[:MAX_PROJECTS]
    end = now
    start = now - dt.timedelta(days=DAYS)
    lines = [f"Today is {now:%Y-%m-%d} (UTC); the time is {now:%H:%M} UTC. Amounts are US dollars.",
             f"The user has {len(projects)} project(s)."]
    for project in projects:
        if project.id == current_project_id:
            lines.append("The user is looking at this project's dashboard:")
        lines += _project_facts(db, core, project, start, end)
    return "\n".join(lines)
