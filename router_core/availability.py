"""Whether this install can serve a model right now, in the words /v1/models and errors share.

Statuses: `available`; `preview` (served, but may be temporarily unavailable at its provider);
`degraded` (every channel that could serve it has an open circuit); `no_channel` (no channel
for its provider, or none whose `models` subset includes it); `retired` (the catalog says it is
no longer served). The sandbox's free models are `available` when the sandbox is on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from router_core.breaker import OPEN
from router_core.catalog import ModelInfo
from router_core.channels import ChannelPool
from router_core.errors import ModelNotFound

AVAILABLE, PREVIEW, DEGRADED, NO_CHANNEL, RETIRED = "available", "preview", "degraded", "no_channel", "retired"
PREVIEW_NOTE = "This model is in preview: it may be temporarily unavailable at its provider."
SANDBOX_NOTE = "A free sandbox model answered by OneKey itself, for trying the API."


@dataclass(frozen=True, slots=True)
class Availability:
    status: str
    note: str          # one sentence saying why, empty for a plain `available`
    channels: tuple[str, ...]  # the channels that may serve the model, in no particular order

    @property
    def servable(self) -> bool:
        return self.status in (AVAILABLE, PREVIEW)


def availability(model: ModelInfo, pool: ChannelPool) -> Availability:
    """The model's status on this install, from the catalog, the channels and their breakers."""
    channels = tuple(c.name for c in pool.serving(model))
    if model.status == RETIRED:
        return Availability(RETIRED, model.status_note or "Retired: OneKey no longer serves this model.", channels)
    if not channels:
        if pool.has_provider(model.provider):
            note = f"No `{model.provider}` channel of this OneKey lists this model in its `models`."
        else:
            note = f"This OneKey has no channel for `{model.provider}`."
        return Availability(NO_CHANNEL, note, channels)
    open_for = [pool.health(c).retry_in() for c in pool.serving(model) if pool.health(c).status() == OPEN]
    if len(open_for) == len(channels):
        return Availability(DEGRADED, degraded_note(model, min(open_for)), channels)
    if model.is_test:
        return Availability(AVAILABLE, model.status_note or SANDBOX_NOTE, channels)
    if model.status == PREVIEW:
        return Availability(PREVIEW, model.status_note or PREVIEW_NOTE, channels)
    return Availability(AVAILABLE, model.status_note, channels)


def degraded_note(model: ModelInfo, retry_in: float) -> str:
    """The note of a model whose every channel has an open circuit (the failover says it too)."""
    return (f"Every route to `{model.provider}` is failing right now; "
            f"try again in {max(1, math.ceil(retry_in))} s.")


def refuse_unservable(model: ModelInfo, state: Availability) -> None:
    """Raise the error a request for a model this install cannot serve gets, saying the status note.

    A `degraded` model is left to the failover, which tries a channel whose cool-down ends and
    otherwise answers 503 with the same note and a `retry-after`.
    """
    if state.status == RETIRED:
        raise ModelNotFound(f"The model `{model.id}` is retired. {state.note}", param="model", code="model_retired")
    if state.status == NO_CHANNEL:
        raise ModelNotFound(f"The model `{model.id}` is not available here (no_channel). {state.note}",
                            param="model", code="model_not_available")
