"""Deadlines of the edge's requests, kept with one timer for them all.

asyncio.timeout costs a Timeout object and a loop timer set and cancelled per request: a few
microseconds of every answer. Here every scope of one `Deadlines` has the same timeout, so their
deadlines come in the order the scopes were entered: an insertion-ordered dict holds the live
ones, oldest first, and one timer is due at the oldest one's deadline. Entering and leaving a
scope is a dict insert and a delete; the timer, once due, cancels the scopes past their deadline
and is set again for the oldest one still live (a scope that ended early is simply gone), so
under steady traffic it fires about once per timeout. A scope past its deadline ends the way
asyncio.timeout ends one: its task is cancelled, and the scope raises TimeoutError in its place.
"""
from __future__ import annotations

import asyncio


class Deadlines:
    """Scopes that must end within `timeout` seconds of being entered."""

    __slots__ = ("timeout", "_live", "_timer", "_loop")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._live: dict[_Scope, None] = {}  # entry order is deadline order
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def scope(self) -> _Scope:
        """`with deadlines.scope():` the block ends within the timeout, or raises TimeoutError."""
        return _Scope(self)

    def _enter(self, scope: _Scope) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline scope needs a task")
        scope.task, scope.deadline, scope.cancelling = task, loop.time() + self.timeout, task.cancelling()
        self._live[scope] = None
        if self._timer is None:  # else it is due at or before this deadline
            self._timer = loop.call_at(scope.deadline, self._expire)

    def close(self) -> None:
        """Stop the timer (the app is done; scopes still live are no longer bounded)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        now = self._loop.time()
        late = []
        for scope in self._live:
            if scope.deadline > now:
                self._timer = self._loop.call_at(scope.deadline, self._expire)
                break
            late.append(scope)
        for scope in late:
            del self._live[scope]
            scope.expired = True
            scope.task.cancel()


class _Scope:
    __slots__ = ("_deadlines", "task", "deadline", "cancelling", "expired")

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines
        self.expired = False

    def __enter__(self) -> _Scope:
        self._deadlines._enter(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.expired:
            del self._deadlines._live[self]
            return
        # As asyncio.timeout: the cancellation was ours unless another came on top of it.
        if self.task.uncancel() <= self.cancelling and exc_type is not None \
                and issubclass(exc_type, asyncio.CancelledError):
            raise TimeoutError from exc
