"""POST /assistant: one question, one answer. JSON for the dashboard panel's script, a page without it.

Neither the question nor the answer is stored or logged: they exist only in this request.
"""
from __future__ import annotations

import datetime as dt
import logging
import time

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from account.assistant.client import AssistantNotConfigured, AssistantUnavailable, ask
from account.assistant.credential import system_key
from account.assistant.facts import HELP, account_facts
from account.core_client import CoreError
from account.store.models import utcnow
from account.store.repositories import ProjectRepository, RateEventRepository
from account.web import context, db

logger = logging.getLogger(__name__)

bp = Blueprint("assistant", __name__)

PROMPT = """You are the OneKey account assistant. Answer the signed-in user's questions about their own OneKey
account (balance, usage, keys, purchases) and about using OneKey, briefly and exactly, from the facts below
only. If the facts do not hold the answer, say so. Never invent numbers. You cannot change anything; point to
the page that does (Keys, Dashboard, Billing).

{help}

The user's account:
{facts}"""


class AskForm(FlaskForm):
    question = TextAreaField("Question", validators=[DataRequired(), Length(max=2000)])
    project_id = HiddenField()


class RateLimited(Exception):
    pass


def _count(user_id: str) -> None:
    """Count one question of the user against the per-minute limit, in the account store, so every
    replica shares it; raises RateLimited. (The store's rate events are purged after an hour.)"""
    limits = context().settings.assistant
    events = RateEventRepository(db())
    bucket, now = f"assistant:{user_id}", utcnow()
    if events.count(bucket, now - dt.timedelta(minutes=1)) >= limits.per_minute:
        raise RateLimited
    events.add(bucket, now)
    db().commit()  # counted even when the model fails: retries cost the provider too


def _reply(question: str, answer: str | None, error: str | None, status: int, form: AskForm):
    if request.accept_mimetypes.best == "application/json":
        return jsonify(answer=answer, error=error), status
    return render_template("assistant/answer.html", question=question, answer=answer, error=error,
                           form=form), status


@bp.post("/assistant")
@login_required
def ask_view():
    settings = context().settings
    form = AskForm()
    if not settings.assistant.enabled:
        abort(404)
    if not form.validate_on_submit():
        return _reply("", None, "Ask a question of at most 2,000 characters.", 400, form)
    status = _status()
    if status.not_configured():
        return _reply("", None, status.reason, 503, form)
    question = form.question.data.strip()
    project_id = form.project_id.data or None
    if project_id and ProjectRepository(db()).get_owned(project_id, current_user.id) is None:
        project_id = None
    try:
        _count(current_user.id)
    except RateLimited:
        return _reply(question, None, f"That is more questions than the assistant takes ({settings.assistant.per_minute} "
                      "a minute). Wait a minute and ask again.", 429, form)
    core = context().core
    try:
        key = system_key(settings, context().sessions, core)
        facts = account_facts(db(), core, current_user.id, project_id, utcnow())
        system = PROMPT.format(help=HELP.format(base_url=settings.api_base_url), facts=facts)
        answer = ask(settings.assistant.base_url or settings.api_base_url, key, settings.assistant.model, system,
                     question, settings.assistant.timeout)
    except CoreError:
        return _reply(question, None, "The assistant cannot reach the OneKey engine right now. Try again in a "
                      "minute.", 503, form)
    except AssistantNotConfigured as exc:
        status.mark_not_configured(str(exc))  # offered again once the operator may have fixed it
        return _reply(question, None, str(exc), 503, form)
    except AssistantUnavailable as exc:
        return _reply(question, None, str(exc), 503, form)
    logger.info("assistant answered user %s", current_user.id)
    return _reply(question, answer, None, 200, AskForm(formdata=None, project_id=project_id))


class AssistantStatus:
    """What this app process last learnt about the assistant being set up: a model without a
    channel here is not offered (the panel says so) for a while, instead of failing each question."""

    RECHECK_S = 600.0

    def __init__(self) -> None:
        self.reason = ""
        self._until = 0.0

    def mark_not_configured(self, reason: str) -> None:
        self.reason, self._until = reason, time.monotonic() + self.RECHECK_S

    def not_configured(self) -> bool:
        return bool(self.reason) and time.monotonic() < self._until


def _status() -> AssistantStatus:
    return current_app.extensions.setdefault("onekey_assistant_status", AssistantStatus())


@bp.app_context_processor
def _panel_shown() -> dict:
    status = _status()
    return {"assistant_enabled": context().settings.assistant.enabled,
            "assistant_off_reason": status.reason if status.not_configured() else ""}
