"""Projects and their API keys: create, rename; create a key (shown once), list, revoke."""
from account.projects.views import bp

__all__ = ["bp"]
