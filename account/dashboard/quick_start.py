"""Which model the dashboard's Quick start and first-run banner point a user at: one that
answers on this install, for this project, right now."""
from __future__ import annotations

from dataclasses import dataclass

from account.core_client import ModelInfo, ProjectInfo

SANDBOX = "sandbox/echo"
# Small, cheap, general models, best first for someone trying the API; any other available
# priced model (the cheapest) when the operator serves none of these.
PREFERRED = ("openai/gpt-5-mini", "anthropic/claude-haiku-4-5", "google/gemini-2.5-flash",
             "openai/gpt-4.1-mini", "xai/grok-3-mini")


@dataclass(frozen=True)
class QuickStart:
    model: str              # the model the examples call
    no_provider: bool       # no priced model has a channel here: only the sandbox answers
    out_of_credit: bool     # the project can pay for no priced request
    free_models: tuple[str, ...]


def quick_start(models: list[ModelInfo], balance: ProjectInfo | None) -> QuickStart:
    """The model to show, and what the banner must say about the rest."""
    free = tuple(m.id for m in models if m.test_model and m.status == "available")
    priced = [m for m in models if not m.test_model and m.status == "available"]
    no_provider = not any(not m.test_model and m.status in ("available", "preview", "degraded") for m in models)
    out_of_credit = balance is not None and balance.balance_micro_usd <= 0 and balance.free_requests <= 0
    model = SANDBOX if SANDBOX in free or not free else free[0]
    if priced and not out_of_credit and balance is not None:
        ids = {m.id for m in priced}
        model = next((p for p in PREFERRED if p in ids), None) or min(
            priced, key=lambda m: (m.input_price + m.output_price, m.id)).id
    return QuickStart(model=model, no_provider=no_provider, out_of_credit=out_of_credit, free_models=free)


def served_model(models: list[ModelInfo]) -> str:
    """The model a page's examples call when no project is in view (the Docs page): a small
    priced model this install serves, else the free sandbox, so a copied example answers."""
    priced = {m.id for m in models if not m.test_model and m.status == "available"}
    return next((p for p in PREFERRED if p in priced), SANDBOX)
