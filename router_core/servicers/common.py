"""Shared servicer plumbing: domain errors to gRPC status, timestamps."""
from __future__ import annotations

import datetime as dt
import functools
import logging

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from router_core.errors import CoreError, StoreUnavailable
from router_core.store_guard import DOWN_MESSAGE as STORE_DOWN, unreachable

logger = logging.getLogger(__name__)

# Trailing metadata `onekey-header-<name>` asks the edge to send header <name> with the error.
HEADER_PREFIX = "onekey-header-"


def _printable(text: str, ascii_only: bool = False) -> str:
    """Text gRPC can always encode: a message may quote a client's string, lone surrogates
    and all, and a status that cannot be encoded leaves the call hanging instead of ending."""
    return text.encode("ascii" if ascii_only else "utf-8", "backslashreplace").decode("ascii" if ascii_only else "utf-8")


async def abort_with(context: grpc.aio.ServicerContext, error: CoreError,
                     headers: list[tuple[str, str]] | tuple = ()) -> None:
    """End the call with the error's status; code, param and headers travel as trailing metadata."""
    context.set_trailing_metadata((
        ("onekey-error-code", _printable(error.code, ascii_only=True)),
        ("onekey-error-param", _printable(error.param or "", ascii_only=True)),
        *((HEADER_PREFIX + name, value) for name, value in (*error.headers, *headers)),
    ))
    await context.abort(error.grpc_code, _printable(error.message))


def unary(method):
    """Wrap a unary servicer method: CoreError -> its status, anything else -> INTERNAL."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except CoreError as exc:
            await abort_with(context, exc)
        except Exception as exc:
            if unreachable(exc):  # the store's trouble, not a bug: a status that says so
                logger.warning("%s refused: routing store unreachable (%s)", method.__name__, type(exc).__name__)
                await abort_with(context, StoreUnavailable(STORE_DOWN))
            logger.error("%s failed: %s at %s", method.__name__, type(exc).__name__, where(exc))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    return wrapper


def where(exc: BaseException) -> str:
    """file:line where an exception was raised: enough to find a bug, without its message.

    Exception messages can quote data (a JSON key, a value), and request content must never
    reach a log line, so unexpected errors are logged by type and place only.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"


def timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def from_timestamp(ts: Timestamp, has: bool) -> dt.datetime | None:
    return ts.ToDatetime(tzinfo=dt.timezone.utc) if has else None
