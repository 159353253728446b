"""Forms of the account app. Every one carries Flask-WTF's CSRF token."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from account.billing.money import MICRO_USD_PER_CENT, parse_usd

# Good enough to catch typos; the magic link itself proves the address works.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class EmailForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320),
                                            Regexp(EMAIL_PATTERN, message="That is not an email address.")])


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: sign-in confirmation, sign-out, revoke."""


class DeleteAccountForm(FlaskForm):
    """Deleting an account is confirmed by typing its e-mail address."""

    email = StringField("Your e-mail address", validators=[DataRequired(), Length(max=320)])


class ProjectForm(FlaskForm):
    name = StringField("Project name", validators=[DataRequired(), Length(min=1, max=100)])


def _usd_or_blank(form, field) -> None:
    if (field.data or "").strip():
        try:
            parse_usd(field.data)
        except ValueError:
            raise ValidationError("A spend limit is an amount in dollars, such as 25 or 7.50, "
                                  "in whole cents: the smallest is $0.01.") from None


class KeyLimitsForm(FlaskForm):
    """A key's optional monthly spend limit (USD) and expiry date (the key stops at 00:00 UTC that day)."""

    spend_limit_usd = StringField("Monthly spend limit (USD)", validators=[Length(max=16), _usd_or_blank])
    expires_on = DateField("Expires on", validators=[Optional()])

    def spend_limit_micro_usd(self) -> int | None:
        text = (self.spend_limit_usd.data or "").strip()
        return parse_usd(text) * MICRO_USD_PER_CENT if text else None


class KeyForm(KeyLimitsForm):
    name = StringField("Key name", validators=[Length(max=100)])
