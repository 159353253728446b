"""GET and DELETE /v1/responses/{id}: a stored response, for the project that created it only.

The response lives at the provider under the channel's key, shared by every project, so the
ownership record decides: the caller's project must be the one that created it, or the answer
is the same 404 as for an id that never existed. The call goes to the channel (provider
account) that holds the response; another channel could not see it, so there is no failover.
No tokens are spent, so no usage event is written.
"""
from __future__ import annotations

import re
import time
from collections.abc import Mapping

from router_core.catalog import ModelInfo
from router_core.channels import ChannelPool
from router_core.errors import InvalidRequest, NotFound, ProviderUnavailable
from router_core.keys import KeyValidator
from router_core.providers import Provider, UpstreamCall, UpstreamError
from router_core.providers.base import openai_error
from router_core.ratelimit import RateLimiter
from router_core.response_owners import ResponseOwners

METHODS = frozenset({"GET", "DELETE"})
# Provider response ids are short tokens; anything else could steer the upstream path.
_RESPONSE_ID = re.compile(r"[A-Za-z0-9_\-]{1,200}")
MAX_BODY = 16 * 1024 * 1024


def response_id_of(endpoint: str) -> str | None:
    """`resp_123` from `responses/resp_123`; None for other endpoints."""
    prefix, _, rest = endpoint.partition("/")
    return rest if prefix == "responses" and rest else None


class StoredResponses:
    """Retrieves or deletes a stored response on behalf of its owner."""

    def __init__(self, keys: KeyValidator, owners: ResponseOwners, pool: ChannelPool,
                 providers: Mapping[str, Provider], http: object, limiter: RateLimiter | None = None) -> None:
        self._keys = keys
        self._limiter = limiter
        self._owners = owners
        self._pool = pool
        self._providers = providers
        self._http = http

    async def call(self, api_key: str, method: str, response_id: str, request_id: str = ""
                   ) -> tuple[int, bytes, str, list[tuple[str, str]]]:
        """(status, OpenAI-shaped JSON body, channel, rate-limit headers) of the provider's answer."""
        identity = await self._keys.validate(api_key)
        # Each of these calls reaches the provider too: it counts against the key's rate limit.
        headers = await self._limiter.admit(identity, request_id) if self._limiter else []
        if method not in METHODS:
            raise InvalidRequest(f"{method} is not supported on /v1/responses/{{id}}.", code="method_not_allowed")
        if not _RESPONSE_ID.fullmatch(response_id):
            raise NotFound("No response with that id was found.", param="response_id", code="response_not_found")
        owner = await self._owners.owner(response_id)
        if owner is None or owner.project_id != identity.project_id:
            raise NotFound(f"No response with id '{response_id}' was found.", param="response_id",
                           code="response_not_found")
        provider = self._providers.get(owner.provider)
        channel = next((c for c in self._pool.channels if c.name == owner.channel), None)
        if provider is None or channel is None:
            raise ProviderUnavailable("The route that holds this response is no longer configured.",
                                      code="channel_gone")
        model = _placeholder(owner.provider)
        call = UpstreamCall(endpoint=f"responses/{response_id}", body=b"", model=model, stream=False, method=method)
        breaker = self._pool.health(channel)
        started = time.monotonic()
        try:
            resp = await provider.send(self._http, channel, call)
            try:
                raw = await resp.read()
            finally:
                resp.close()
        except UpstreamError as exc:
            breaker.failure()
            return exc.status, openai_error(exc.message, "api_error", exc.code), channel.name, headers
        if resp.status < 400:
            breaker.success(time.monotonic() - started)
            return resp.status, raw[:MAX_BODY], channel.name, headers
        failure = provider.error(resp.status, raw, channel, model)
        if failure.retryable:
            breaker.failure()
        else:
            breaker.success(time.monotonic() - started)
        return failure.status, failure.body, channel.name, headers


def _placeholder(provider: str) -> ModelInfo:
    """Provider modules read a model for error notes; a stored response has none at hand."""
    return ModelInfo(id=f"{provider}/stored-response", provider=provider, upstream_id="", display_name="",
                     input_price=0, output_price=0, cached_input_price=0, context_window=0,
                     status="available", endpoints=frozenset({"responses"}), created=0)
