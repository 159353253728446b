"""The model catalog: the data file shipped in the package, plus the operator's own file."""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from importlib import resources

from router_core.errors import InvalidRequest, ModelNotFound

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

    @property
    def is_test(self) -> bool:
        return self.status == "test"


# Integer prices of a model, in micro-USD per 1M tokens: the fields a markup applies to.
PRICE_FIELDS = tuple(f.name for f in dataclasses.fields(ModelInfo) if f.name.endswith("_price"))


class Catalog:
    """Resolves the canonical `provider/model` id, its short name and the upstream id."""

    def __init__(self, models: list[ModelInfo]) -> None:
        self._models = {m.id: m for m in models}
        aliases: dict[str, list[ModelInfo]] = {}
        for m in models:
            for alias in {m.id.split("/", 1)[1], m.upstream_id}:
                aliases.setdefault(alias, []).append(m)
        # A bare id is accepted only where it names one model.
        self._aliases = {a: ms[0] for a, ms in aliases.items() if len(ms) == 1}
        self._ambiguous = {a for a, ms in aliases.items() if len(ms) > 1}

    @classmethod
    def load(cls, operator_file: str | None = None, include_test: bool = True) -> Catalog:
        """The shipped catalog, with the operator's file (adds, overrides, hides, markup) applied.

        Raises router_core.catalog_file.CatalogError, naming the file and line, on a bad file.
        """
        from router_core.catalog_file import apply_operator_file, parse_models

        shipped = resources.files("router_core").joinpath("catalog/models.toml").read_text()
        models = parse_models(tomllib.loads(shipped), shipped, "the shipped catalog")
        if operator_file:
            models = apply_operator_file(models, operator_file)
        return cls([m for m in models if include_test or not m.is_test])

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
