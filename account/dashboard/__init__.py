"""The usage dashboard: balance, usage by day (SVG chart) and by model, recent requests."""
from account.dashboard import requests as _requests  # noqa: F401 (registers its views on bp)
from account.dashboard.views import bp

__all__ = ["bp"]
