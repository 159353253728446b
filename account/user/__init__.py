"""The user's own settings: sign-in methods, sessions, data export and account deletion."""
from account.user.views import bp

__all__ = ["bp"]
