"""The usage dashboard: balance, usage by day (SVG chart) and by model, recent requests."""
from account.dashboard.views import bp

__all__ = ["bp"]
