"""Sign-in: Google (OIDC), GitHub (OAuth 2.0) and magic links by email; sign-out."""
from account.auth.views import bp

__all__ = ["bp"]
