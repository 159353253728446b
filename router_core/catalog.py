"""The model catalog: the data file shipped in the package, plus the operator's own file."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from router_core.errors import InvalidRequest, ModelNotFound

if TYPE_CHECKING:
    from router_core.prices import PackageModel

# What a catalog entry may declare as its status. `test` marks OneKey's free sandbox models.
LIFECYCLE = ("available", "preview", "retired", "test")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model: its canonical id, provider, upstream id, prices (micro-USD per 1M tokens).

    Prices are what the customer pays: the list price with the operator's markup applied.
    `status` is the catalog's word on the model (see LIFECYCLE); whether this install can
    serve it is worked out per request by router_core.availability.
    """

    id: str
    provider: str
    upstream_id: str
    display_name: str
    input_price: int
    output_price: int
    cached_input_price: int
    context_window: int
    status: str
    endpoints: frozenset[str]
    created: int
    status_note: str = ""   # the operator's or the catalog's own word on a status, e.g. a retirement
    cache_write_input_price: int = 0  # per 1M input tokens written to a prompt cache (0: as input)
    # Where the prices come from: the price package (with its version), or the operator's file.
    price_source: str = ""
    # The package's model, when it prices this one: billing then follows the package's own
    # rules (tiers, cache writes, prices by date), times `price_factor` (the markup).
    priced_by: PackageModel | None = field(default=None, compare=False, repr=False)
    price_factor: Decimal = Decimal(1)

    @property
    def is_test(self) -> bool:
        return self.status == "test"


# Integer prices of a model, in micro-USD per 1M tokens: the fields a markup applies to.
PRICE_FIELDS = tuple(f.name for f in dataclasses.fields(ModelInfo) if f.name.endswith("_price"))


class Catalog:
    """Resolves the canonical `provider/model` id, its short name and the upstream id."""

    def __init__(self, models: list[ModelInfo], extra_aliases: dict[str, str] | None = None) -> None:
        self._models = {m.id: m for m in models}
        aliases: dict[str, list[ModelInfo]] = {}
        for m in models:
            for alias in {m.id.split("/", 1)[1], m.upstream_id}:
                aliases.setdefault(alias, []).append(m)
        # Ids a provider lists beside a catalog model (its dated snapshots): each names that model.
        for alias, model_id in (extra_aliases or {}).items():
            if model_id in self._models and alias not in aliases:
                aliases[alias] = [self._models[model_id]]
        # A bare id is accepted only where it names one model.
        self._aliases = {a: ms[0] for a, ms in aliases.items() if len(ms) == 1}
        self._ambiguous = {a for a, ms in aliases.items() if len(ms) > 1}

    @classmethod
    def load(cls, operator_file: str | None = None, include_test: bool = True) -> Catalog:
        """The shipped catalog priced by the package, with the operator's file applied (no listings).

        Raises router_core.catalog_file.CatalogError, naming the file and line, on a bad file.
        """
        from router_core.catalog_build import build
        from router_core.prices import PriceBook

        catalog = build(PriceBook(), operator_file).catalog
        return cls([m for m in catalog.all() if include_test or not m.is_test])

    def replace_with(self, other: Catalog) -> None:
        """Take another catalog's models at once (a sync or reload), for everyone holding this one."""
        self._models, self._aliases, self._ambiguous = other._models, other._aliases, other._ambiguous

    def all(self) -> list[ModelInfo]:
        return list(self._models.values())

    def get(self, model_id: str) -> ModelInfo | None:
        """The model with this canonical id, or None."""
        return self._models.get(model_id)

    def resolve(self, name: str, endpoint: str | None = None) -> ModelInfo:
        """The model a client's `model` field names; raises ModelNotFound or InvalidRequest."""
        model = self._models.get(name) or self._aliases.get(name)
        if model is None:
            if name in self._ambiguous:
                raise ModelNotFound(
                    f"The model `{name}` is offered by several providers; use its canonical id "
                    "`provider/model` (see GET /v1/models).", param="model")
            raise ModelNotFound(
                f"The model `{name}` does not exist or you do not have access to it. "
                "GET /v1/models lists the models OneKey serves.", param="model")
        if endpoint is not None and endpoint not in model.endpoints:
            served = ", ".join(f"/v1/{e}" for e in sorted(model.endpoints))
            raise InvalidRequest(
                f"The model `{model.id}` is not served on /v1/{endpoint}; use {served}.",
                param="model", code="unsupported_endpoint")
        return model
