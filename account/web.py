"""What views share: the app's collaborators, the request's database session, small helpers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import abort, current_app, g
from flask_login import UserMixin, current_user
from sqlalchemy.orm import Session, sessionmaker

from account.core_client import CoreClient
from account.mail import Mailer
from account.settings import AccountSettings
from account.store.models import Project
from account.store.repositories import ProjectRepository

if TYPE_CHECKING:
    from account.auth.oauth import OAuthClients


@dataclass
class AccountContext:
    """The collaborators create_app() was given, kept on app.extensions['onekey']."""

    settings: AccountSettings
    sessions: sessionmaker[Session]
    core: CoreClient
    mailer: Mailer
    oauth: OAuthClients


class SignedInUser(UserMixin):
    """The flask-login user: just enough to find the user's rows again."""

    def __init__(self, user_id: str, email: str) -> None:
        self.id = user_id
        self.email = email


def context() -> AccountContext:
    return current_app.extensions["onekey"]


def db() -> Session:
    """The request's database session; the request commits it (or not) at its end."""
    if "db" not in g:
        g.db = context().sessions()
    return g.db


def owned_project(project_id: str) -> Project:
    """The signed-in user's project, or 404 — another user's project looks like no project."""
    project = ProjectRepository(db()).get_owned(project_id, current_user.id)
    if project is None:
        abort(404)
    return project


def usd(micro: int) -> str:
    """12_340_000 -> '$12.34'; fractions of a cent are shown when they matter."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), 1_000_000)
    cents = f"{frac:06d}"
    shown = cents[:2] if cents[2:] == "0000" else cents.rstrip("0")
    return f"{sign}${whole:,}.{shown}"
