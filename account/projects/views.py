"""Project and key pages. Each project URL is checked against the signed-in user first."""
from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from account.core_client import CoreError, CoreNotFound, CoreRefused, CoreUnavailable
from account.forms import ConfirmForm, KeyForm, KeyLimitsForm, ProjectForm
from account.projects.handoff import hand_over, take
from account.projects.service import create_project
from account.store.repositories import KeyAuditRepository, ProjectRepository, UserRepository
from account.web import context, db, owned_project, usd

logger = logging.getLogger(__name__)

bp = Blueprint("projects", __name__)


def _core_failed(exc: CoreError, what: str):
    status = 503 if isinstance(exc, CoreUnavailable) else 502
    message = ("The routing service is not reachable right now, so nothing was changed. Try again in a "
               "minute." if isinstance(exc, CoreUnavailable) else f"The routing service refused to {what}.")
    return render_template("error.html", title="Not done", message=message,
                           back=url_for("projects.index")), status


@bp.get("/")
def home():
    """The user's place after sign-in: the dashboard of their only project, or the list.

    A visitor is sent to sign in without the "sign in to see that page" note: they asked for
    no page in particular.
    """
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    projects = ProjectRepository(db()).owned_by(current_user.id)
    if len(projects) == 1:
        return redirect(url_for("dashboard.show", project_id=projects[0].id))
    return redirect(url_for("projects.index"))


@bp.get("/projects")
@login_required
def index():
    projects = ProjectRepository(db()).owned_by(current_user.id)
    return render_template("projects/index.html", projects=projects, form=ProjectForm())


@bp.post("/projects")
@login_required
def create():
    form = ProjectForm()
    projects = ProjectRepository(db()).owned_by(current_user.id)
    if form.validate_on_submit() and _name_taken(projects, form.name.data):
        form.name.errors = [f"You already have a project named “{form.name.data.strip()}”; choose another name."]
    if form.name.errors or not form.validate_on_submit():
        return render_template("projects/index.html", projects=projects, form=form), 400
    user = UserRepository(db()).get(current_user.id)
    try:
        project = create_project(db(), context(), user, form.name.data.strip())
    except CoreError as exc:
        return _core_failed(exc, "create the project")
    if project_free_requests(project.id) == 0:
        flash(f"Project “{project.name}” created. Free requests come once per account, with the first project, "
              "so this one starts without any: add credit on its Billing page to use priced models.")
    else:
        flash(f"Project “{project.name}” created.")
    return redirect(url_for("projects.show", project_id=project.id))


@bp.get("/projects/<project_id>")
@login_required
def show(project_id: str):
    return _show_page(owned_project(project_id))


def _show_page(project, key_form: KeyForm | None = None, alerts: list[str] | None = None, status: int = 200):
    """The project's keys page; after a refused form, with that form as typed and why above it."""
    keys, spend, core_error = [], {}, None
    try:
        keys = context().core.list_keys(project.id)
        now = dt.datetime.now(dt.timezone.utc)
        rows, _ = context().core.usage(project.id, month_start(now), now + dt.timedelta(seconds=1), "key")
        spend = {r.group: r for r in rows}
    except CoreError as exc:
        core_error = str(exc)
    show_revoked = request.args.get("revoked") == "shown"
    revoked = sum(1 for k in keys if k.revoked_at)
    shown = [k for k in keys if show_revoked or not k.revoked_at]
    audit = KeyAuditRepository(db()).recent(project.id, 10)
    return render_template("projects/show.html", project=project, keys=shown, revoked_count=revoked,
                           show_revoked=show_revoked, spend=spend, core_error=core_error, audit=audit,
                           now=dt.datetime.now(dt.timezone.utc), key_form=key_form or KeyForm(),
                           rename_form=ProjectForm(name=project.name), alerts=alerts or []), \
        503 if core_error else status


def _name_taken(projects, name: str) -> bool:
    """Project names are unique among a user's projects (case and surrounding spaces aside)."""
    wanted = name.strip().casefold()
    return any(p.name.strip().casefold() == wanted for p in projects)


def _form_errors(form) -> list[str]:
    return [" ".join(errors) for errors in form.errors.values()]


@bp.post("/projects/<project_id>/rename")
@login_required
def rename(project_id: str):
    project = owned_project(project_id)
    form = ProjectForm()
    if not form.validate_on_submit():
        flash("Not renamed: a project name is 1 to 100 characters.", "error")
        return redirect(url_for("projects.show", project_id=project.id))
    name = form.name.data.strip()
    others = [p for p in ProjectRepository(db()).owned_by(current_user.id) if p.id != project.id]
    if _name_taken(others, name):
        flash(f"Not renamed: you already have a project named “{name}”.", "error")
        return redirect(url_for("projects.show", project_id=project.id))
    try:
        context().core.rename_project(project.id, name)
    except CoreError as exc:
        return _core_failed(exc, "rename the project")
    project.name = name
    flash("Project renamed.")
    return redirect(url_for("projects.show", project_id=project.id))


@bp.post("/projects/<project_id>/keys")
@login_required
def create_key(project_id: str):
    project = owned_project(project_id)
    form = KeyForm()
    if not form.validate_on_submit():
        return _show_page(project, form, [f"No key was created: {e}" for e in _form_errors(form)], 400)
    name = (form.name.data or "").strip()
    try:
        key, secret = context().core.create_key(project.id, name, form.spend_limit_micro_usd(),
                                                expiry_of(form.expires_on.data))
    except CoreRefused as exc:
        return _show_page(project, form, [f"No key was created: {exc}"], 400)
    except CoreError as exc:
        return _core_failed(exc, "create the key")
    KeyAuditRepository(db()).record(current_user.id, project.id, key.id, key.prefix, "create",
                                    request.remote_addr or "")
    logger.info("user %s created key %s in project %s", current_user.id, key.id, project.id)
    # POST-redirect-GET: a reload of the next page shows it again without making another key.
    hand_over(key.id, secret)
    return redirect(url_for("projects.key_created", project_id=project.id, key_id=key.id))


@bp.get("/projects/<project_id>/keys/<key_id>/new")
@login_required
def key_created(project_id: str, key_id: str):
    """The secret of a key just made, shown once; later views say it cannot be shown again."""
    project = owned_project(project_id)
    try:
        key = _find_key(project.id, key_id)
    except CoreNotFound:
        abort(404)
    except CoreError as exc:
        return _core_failed(exc, "find the key")
    return render_template("projects/key_created.html", project=project, key=key, secret=take(key.id),
                           base_url=context().settings.api_base_url)


@bp.get("/projects/<project_id>/keys/<key_id>")
@login_required
def key_page(project_id: str, key_id: str):
    """One key: its usage this month, its spend limit and expiry."""
    return _key_page(owned_project(project_id), key_id)


def _key_page(project, key_id: str, form: KeyLimitsForm | None = None, alerts: list[str] | None = None):
    """A key's page; after a refused change, with the form as typed and why (status 400)."""
    core = context().core
    try:
        key = _find_key(project.id, key_id)
        now = dt.datetime.now(dt.timezone.utc)
        rows, _ = core.usage(project.id, month_start(now), now + dt.timedelta(seconds=1), "key")
    except CoreNotFound:
        abort(404)
    except CoreError as exc:
        return _core_failed(exc, "find the key")
    if form is None:
        limit = key.spend_limit_micro_usd
        form = KeyLimitsForm(spend_limit_usd=usd(limit).lstrip("$").replace(",", "") if limit else "",
                             expires_on=last_day(key.expires_at))
    return render_template("projects/key.html", project=project, key=key, form=form, now=now, alerts=alerts or [],
                           month=next((r for r in rows if r.group == key.id), None)), 400 if alerts else 200


@bp.post("/projects/<project_id>/keys/<key_id>")
@login_required
def update_key(project_id: str, key_id: str):
    project = owned_project(project_id)
    form = KeyLimitsForm()
    if not form.validate_on_submit():
        return _key_page(project, key_id, form, [f"Nothing was changed: {e}" for e in _form_errors(form)])
    try:
        key = context().core.update_key(project.id, key_id, form.spend_limit_micro_usd(),
                                        expiry_of(form.expires_on.data))
    except CoreNotFound:
        abort(404)
    except CoreRefused as exc:
        return _key_page(project, key_id, form, [f"Nothing was changed: {exc}"])
    except CoreError as exc:
        return _core_failed(exc, "change the key")
    logger.info("user %s changed the limits of key %s in project %s", current_user.id, key.id, project.id)
    flash(f"Key “{key.name}” saved. Every server applies it within seconds.")
    return redirect(url_for("projects.key_page", project_id=project.id, key_id=key.id))


def month_start(now: dt.datetime) -> dt.datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def expiry_of(day: dt.date | None) -> dt.datetime | None:
    """A key set to expire "on" a day works through that day (UTC) and stops at the next midnight."""
    if day is None:
        return None
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


@bp.app_template_filter("last_day")
def last_day_text(expires_at: dt.datetime) -> str:
    """A key's expiry as the day picked: stopping at 2027-02-01 00:00 UTC reads '2027-01-31'."""
    return last_day(expires_at).isoformat()


def last_day(expires_at: dt.datetime | None) -> dt.date | None:
    """The last day (UTC) a key works: the day before the midnight it stops at."""
    return (expires_at - dt.timedelta(days=1)).date() if expires_at else None


def project_free_requests(project_id: str) -> int | None:
    try:
        return context().core.balance(project_id).free_requests
    except CoreError:
        return None


def _find_key(project_id: str, key_id: str):
    for key in context().core.list_keys(project_id):
        if key.id == key_id:
            return key
    raise CoreNotFound("no such key")


@bp.get("/projects/<project_id>/keys/<key_id>/revoke")
@login_required
def revoke_confirm(project_id: str, key_id: str):
    project = owned_project(project_id)
    try:
        key = _find_key(project.id, key_id)
    except CoreNotFound:
        abort(404)
    except CoreError as exc:
        return _core_failed(exc, "find the key")
    return render_template("projects/revoke.html", project=project, key=key, form=ConfirmForm())


@bp.post("/projects/<project_id>/keys/<key_id>/revoke")
@login_required
def revoke(project_id: str, key_id: str):
    project = owned_project(project_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        key = context().core.revoke_key(project.id, key_id)  # the core checks the key is this project's
    except CoreNotFound:
        abort(404)
    except CoreError as exc:
        return _core_failed(exc, "revoke the key")
    KeyAuditRepository(db()).record(current_user.id, project.id, key.id, key.prefix, "revoke",
                                    request.remote_addr or "")
    logger.info("user %s revoked key %s in project %s", current_user.id, key.id, project.id)
    flash(f"Key {key.prefix}… revoked. It stops working within seconds.")
    return redirect(url_for("projects.show", project_id=project.id))
