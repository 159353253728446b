"""/settings: e-mail, linked sign-in methods, active sessions, data export, account deletion."""
from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, abort, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required, logout_user

from account.core_client import CoreError
from account.forms import ConfirmForm, DeleteAccountForm
from account.sessions import session_hash
from account.store.models import utcnow
from account.store.repositories import IdentityRepository, ProjectRepository, UserRepository, WebSessionRepository
from account.user.service import delete_account, export, unspent_credit
from account.web import context, db

logger = logging.getLogger(__name__)

bp = Blueprint("settings", __name__)

LABELS = {"google": "Google", "github": "GitHub"}


def _user():
    user = UserRepository(db()).get(current_user.id)
    if user is None:
        abort(404)
    return user


@bp.get("/settings")
@login_required
def show():
    user = _user()
    current = session_hash(session.sid) if getattr(session, "sid", None) else None
    sessions = WebSessionRepository(db()).for_user(user.id, utcnow())
    identities = IdentityRepository(db()).for_user(user.id)
    linked = {i.provider for i in identities}
    configured = [name for name in LABELS if name in context().oauth.names]
    return render_template("user/settings.html", user=user, identities=identities, labels=LABELS,
                           unlinked=[n for n in configured if n not in linked], sessions=sessions,
                           current=current, form=ConfirmForm())


@bp.post("/settings/sessions/others")
@login_required
def end_other_sessions():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    WebSessionRepository(db()).delete_for_user(current_user.id, keep=session_hash(session.sid) if session.sid else None)
    logger.info("user %s signed out their other sessions", current_user.id)
    flash("Every other session is signed out. This browser stays signed in.")
    return redirect(url_for("settings.show"))


@bp.post("/settings/sessions/all")
@login_required
def end_all_sessions():
    """Sign out everywhere, this browser included."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user_id = current_user.id
    ended = len(WebSessionRepository(db()).for_user(user_id, utcnow()))
    WebSessionRepository(db()).delete_for_user(user_id)
    logout_user()
    session.end()
    logger.info("user %s signed out everywhere", user_id)
    flash(f"Signed out everywhere: {ended} session{'s' if ended != 1 else ''} ended, this browser's included.")
    return redirect(url_for("auth.login"))


@bp.get("/settings/export")
@login_required
def export_data():
    """The user's own data as a JSON download."""
    try:
        data = export(db(), context().core, _user())
    except CoreError as exc:
        return render_template("error.html", title="Export not ready",
                               message=f"{exc}, so the export would be incomplete. Try again in a minute.",
                               back=url_for("settings.show")), 503
    return Response(json.dumps(data, indent=2, ensure_ascii=False), mimetype="application/json",
                    headers={"Content-Disposition": 'attachment; filename="onekey-account.json"'})


@bp.get("/settings/delete")
@login_required
def delete_confirm():
    user = _user()
    projects = ProjectRepository(db()).owned_by(user.id)
    return render_template("user/delete.html", user=user, projects=projects,
                           unspent=unspent_credit(context().core, projects), form=DeleteAccountForm())


@bp.post("/settings/delete")
@login_required
def delete():
    user = _user()
    form = DeleteAccountForm()
    if not form.validate_on_submit() or form.email.data.strip().lower() != user.email:
        projects = ProjectRepository(db()).owned_by(user.id)
        return render_template("user/delete.html", user=user, projects=projects, form=form,
                               unspent=unspent_credit(context().core, projects),
                               alerts=[f"Nothing was deleted: type {user.email} exactly to confirm."]), 400
    try:
        revoked = delete_account(db(), context().core, user)
    except CoreError as exc:
        db().rollback()
        return render_template("error.html", title="Not deleted",
                               message=f"{exc}, so your account was not deleted (a project closed before this "
                                       "stays closed, its keys revoked). Try again in a minute.", back=url_for("settings.show")), 503
    logout_user()
    session.end()
    flash(f"Your account is deleted. {revoked} key{'s' if revoked != 1 else ''} revoked.")
    return redirect(url_for("auth.login"))
