"""Project and key pages. Each project URL is checked against the signed-in user first."""
from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from account.core_client import CoreError, CoreNotFound, CoreUnavailable
from account.forms import ConfirmForm, KeyForm, ProjectForm
from account.projects.service import create_project
from account.store.repositories import KeyAuditRepository, ProjectRepository, UserRepository
from account.web import context, db, owned_project

logger = logging.getLogger(__name__)

bp = Blueprint("projects", __name__)


def _core_failed(exc: CoreError, what: str):
    status = 503 if isinstance(exc, CoreUnavailable) else 502
    message = ("The routing service is not reachable right now, so nothing was changed. Try again in a "
               "minute." if isinstance(exc, CoreUnavailable) else f"The routing service refused to {what}.")
    return render_template("error.html", title="Not done", message=message,
                           back=url_for("projects.index")), status


@bp.get("/")
@login_required
def home():
    """The user's place after sign-in: the dashboard of their only project, or the list."""
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
    if not form.validate_on_submit():
        projects = ProjectRepository(db()).owned_by(current_user.id)
        return render_template("projects/index.html", projects=projects, form=form), 400
    user = UserRepository(db()).get(current_user.id)
    try:
        project = create_project(db(), context(), user, form.name.data.strip())
    except CoreError as exc:
        return _core_failed(exc, "create the project")
    flash(f"Project “{project.name}” created.")
    return redirect(url_for("projects.show", project_id=project.id))


@bp.get("/projects/<project_id>")
@login_required
def show(project_id: str):
    project = owned_project(project_id)
    keys, core_error = [], None
    try:
        keys = context().core.list_keys(project.id)
    except CoreError as exc:
        core_error = str(exc)
    audit = KeyAuditRepository(db()).recent(project.id, 10)
    return render_template("projects/show.html", project=project, keys=keys, core_error=core_error, audit=audit,
                           key_form=KeyForm(), rename_form=ProjectForm(name=project.name)), 503 if core_error else 200


@bp.post("/projects/<project_id>/rename")
@login_required
def rename(project_id: str):
    project = owned_project(project_id)
    form = ProjectForm()
    if not form.validate_on_submit():
        flash("A project name is 1 to 100 characters.")
        return redirect(url_for("projects.show", project_id=project.id))
    name = form.name.data.strip()
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
        abort(400)
    name = (form.name.data or "").strip() or "key"
    try:
        key, secret = context().core.create_key(project.id, name)
    except CoreError as exc:
        return _core_failed(exc, "create the key")
    KeyAuditRepository(db()).record(current_user.id, project.id, key.id, key.prefix, "create",
                                    request.remote_addr or "")
    logger.info("user %s created key %s in project %s", current_user.id, key.id, project.id)
    # Rendered straight from this POST, never stored or redirected: the secret exists only here.
    return render_template("projects/key_created.html", project=project, key=key, secret=secret,
                           base_url=context().settings.api_base_url)


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
