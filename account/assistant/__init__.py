"""The account assistant: answers a signed-in user's questions about their own account, through
OneKey's own routing engine, paid for by a system project."""
from account.assistant.views import bp

__all__ = ["bp"]
