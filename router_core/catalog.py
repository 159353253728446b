"""The model catalog, loaded from the data file shipped in the package."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from router_core.errors import InvalidRequest, ModelNotFound


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model: its canonical id, provider, upstream id, prices (micro-USD per 1M tokens)."""

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

    @property
    def is_test(self) -> bool:
        return self.status == "test"


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
    def load(cls, include_test: bool = True) -> Catalog:
        """Load the catalog shipped with the package."""
        raw = tomllib.loads(resources.files("router_core").joinpath("catalog/models.toml").read_text())
        models = [
            ModelInfo(
                id=m["id"], provider=m["provider"], upstream_id=m["upstream_id"],
                display_name=m["display_name"], input_price=m["input_price"],
                output_price=m["output_price"], cached_input_price=m["cached_input_price"],
                context_window=m["context_window"], status=m["status"],
                endpoints=frozenset(m["endpoints"]), created=m["created"],
            )
            for m in raw["models"]
            if include_test or m["status"] != "test"
        ]
        return cls(models)

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
