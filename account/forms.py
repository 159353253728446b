"""Forms of the account app. Every one carries Flask-WTF's CSRF token."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Length, Regexp

# Good enough to catch typos; the magic link itself proves the address works.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class EmailForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320),
                                            Regexp(EMAIL_PATTERN, message="That is not an email address.")])


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: sign-in confirmation, sign-out, revoke."""


class ProjectForm(FlaskForm):
    name = StringField("Project name", validators=[DataRequired(), Length(min=1, max=100)])


class KeyForm(FlaskForm):
    name = StringField("Key name", validators=[Length(max=100)])
