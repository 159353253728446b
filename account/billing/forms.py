"""The billing forms; each carries Flask-WTF's CSRF token."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class BuyForm(FlaskForm):
    """One purchase: a pack's amount (hidden) or a custom amount typed in, in dollars."""

    amount_usd = StringField("Amount (USD)", validators=[DataRequired(), Length(max=16)])
