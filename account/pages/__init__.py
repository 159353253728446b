"""Pages about the service itself: the models and their prices, how to call OneKey, the icon."""
from account.pages.views import bp

__all__ = ["bp"]
