"""Project creation: the core makes the project (and holds its credit); we remember the owner."""
from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from account.core_client import CoreError
from account.store.models import Project, User
from account.store.repositories import ProjectRepository

logger = logging.getLogger(__name__)

FIRST_PROJECT_NAME = "My first project"


def create_project(db: Session, ctx, user: User, name: str) -> Project:
    """A new project for the user; the user's first one gets the free requests, once.

    Raises the core client's errors; then nothing is written here.
    """
    db.refresh(user, with_for_update=True)  # two first sign-ins at once must not both get the grant
    free = 0 if user.free_grant_used else ctx.settings.first_project_free_requests
    info = ctx.core.create_project(name, free)
    project = ProjectRepository(db).add(info.id, user.id, name)
    user.free_grant_used = True
    logger.info("user %s created project %s (free requests %d)", user.id, project.id, free)
    return project


def ensure_first_project(db: Session, ctx, user: User) -> None:
    """At sign-in: a user who never had the welcome project gets it now (if the core answers)."""
    db.refresh(user, with_for_update=True)
    if user.free_grant_used or ProjectRepository(db).owned_by(user.id):
        return
    try:
        create_project(db, ctx, user, FIRST_PROJECT_NAME)
    except CoreError as exc:
        # Signing in must not depend on the core; the projects page offers to try again.
        logger.warning("first project for user %s not created: %s", user.id, type(exc).__name__)
