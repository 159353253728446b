"""The live catalog: shipped entries and listed models priced by the package, the operator's file
on top, and each model's status from what the providers' own model lists say.

- A text model a channel lists and the package prices is servable, shipped or not.
- A listed text model with no known price is not served; it is reported as unpriced.
- A catalog model that no channel of its provider lists any more is `retired` (once every one of
  that provider's channels has answered); one a provider answered "not found" for, too.
- A provider none of whose channels has answered keeps the shipped statuses.
- The operator's file wins: it adds, overrides, hides and marks up; a `status` it sets, and a
  model it adds, are not changed by the lists.
"""
from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources

from router_core.catalog import Catalog, ModelInfo
from router_core.catalog_file import SHIPPED, apply_operator_file, package_facts, parse_models
from router_core.prices import PriceBook
from router_core.settings import ChannelSettings

# Listed ids of kinds OneKey does not serve (it serves text generation through chat
# completions, Responses and Messages): embeddings, images, video, audio, speech, realtime,
# moderation, and the legacy completions-only models.
_NOT_TEXT = re.compile(r"embed|tts|whisper|transcribe|dall-e|image|imagen|imagine|veo|sora|moderation|"
                       r"realtime|audio|lyria|aqa|davinci|babbage|video|speech|native-audio|-live|banana|robotics")
_SNAPSHOT = re.compile(r"^(.*)-(\d{8}|\d{4}-\d{2}-\d{2}|\d{4})$")
_RESPONSES_ONLY = re.compile(r"codex|-pro(\b|-)|deep-research|computer-use")


def is_text_model(upstream_id: str) -> bool:
    return _NOT_TEXT.search(upstream_id.lower()) is None


def default_endpoints(provider: str, upstream_id: str) -> frozenset[str]:
    """The provider's native APIs for a model the shipped catalog does not describe."""
    if provider == "openai":
        if _RESPONSES_ONLY.search(upstream_id):
            return frozenset({"responses"})
        return frozenset({"chat/completions", "responses"})
    return {"anthropic": frozenset({"chat/completions", "messages"}),
            "xai": frozenset({"chat/completions", "responses"})}.get(provider, frozenset({"chat/completions"}))


def discovered(book: PriceBook, provider: str, upstream_id: str) -> ModelInfo | None:
    """A listed model the shipped catalog lacks, described and priced by the package (None: unpriced)."""
    facts = package_facts(book, provider, upstream_id)
    if facts is None:
        return None
    return ModelInfo(id=f"{provider}/{upstream_id}", provider=provider, upstream_id=upstream_id,
                     display_name=facts["priced_by"].name, status="available", created=0,
                     endpoints=default_endpoints(provider, upstream_id), **facts)


@dataclass
class Built:
    """A catalog, with what the sync learned beside it."""

    catalog: Catalog
    unpriced: dict[str, list[str]] = field(default_factory=dict)    # provider -> listed ids with no price
    listed_by: dict[str, frozenset[str]] = field(default_factory=dict)  # model id -> channels listing it


def shipped_models(book: PriceBook) -> list[ModelInfo]:
    text = resources.files("router_core").joinpath("catalog/models.toml").read_text()
    return parse_models(tomllib.loads(text), text, SHIPPED, book)


def _base(upstream_id: str) -> str:
    match = _SNAPSHOT.match(upstream_id)
    return match.group(1) if match else upstream_id


def build(book: PriceBook, operator_file: str | None = None, listings: Mapping[str, Sequence[str]] | None = None,
          channels: Sequence[ChannelSettings] = (), gone: Mapping[str, str] | None = None,
          listed_at: float | None = None) -> Built:
    """The catalog from the shipped file, the channels' lists (channel name -> ids), the operator's file."""
    listings = listings or {}
    models = shipped_models(book)
    answered: dict[str, dict[str, list[str]]] = {}  # provider -> channel -> listed text ids
    for channel in channels:
        if channel.name in listings and channel.provider != "sandbox":
            answered.setdefault(channel.provider, {})[channel.name] = [
                i for i in listings[channel.name] if is_text_model(i)]
    unpriced: dict[str, list[str]] = {}
    aliases: dict[str, str] = {}
    for provider, by_channel in answered.items():
        covered = {m.upstream_id.removesuffix("-latest"): m for m in models if m.provider == provider}
        for listed in sorted({i for ids in by_channel.values() for i in ids}, key=len):
            model = covered.get(listed) or covered.get(_base(listed))
            if model is not None:
                if listed != model.upstream_id:
                    aliases[listed] = model.id
                continue
            found = discovered(book, provider, listed)
            if found is None:
                unpriced.setdefault(provider, []).append(listed)
                continue
            models.append(found)
            covered[listed] = found
    pinned: set[str] = set()
    if operator_file:
        before = {m.id for m in models}
        models = apply_operator_file(models, operator_file, book)
        # The operator vouches for a status it sets and for a model of its own (a fine-tune, a
        # model the provider serves without listing it): the lists don't change those.
        pinned = _pinned_statuses(operator_file) | {m.id for m in models if m.id not in before}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(listed_at or time.time()))
    # Channels whose list is not known (never answered): they may serve anything of theirs.
    unknown = {p: frozenset(c.name for c in channels if c.provider == p and c.name not in by_channel)
               for p, by_channel in answered.items()}
    listed_by: dict[str, frozenset[str]] = {}
    result = []
    for model in models:
        by_channel = answered.get(model.provider)
        if by_channel is not None and not model.is_test and model.id not in pinned:
            names = frozenset(c for c, ids in by_channel.items() if _lists(ids, model.upstream_id))
            listed_by[model.id] = names | unknown[model.provider]
            if not unknown[model.provider]:  # retired only when every channel of the provider said so
                model = _status_from_lists(model, names, stamp)
        if gone and model.id in gone and model.id not in pinned:
            model = replace(model, status="retired", status_note=gone[model.id])
        result.append(model)
    return Built(Catalog(result, aliases), unpriced, listed_by)


def _lists(ids: Sequence[str], upstream_id: str) -> bool:
    base = upstream_id.removesuffix("-latest")
    return any(i == upstream_id or i == base or _base(i) == base for i in ids)


def _status_from_lists(model: ModelInfo, channels: frozenset[str], stamp: str) -> ModelInfo:
    if not channels:
        return replace(model, status="retired", status_note=(
            f"Retired: `{model.provider}` no longer lists `{model.upstream_id}` (model lists read {stamp})."))
    if model.status == "retired":
        return replace(model, status="available", status_note="")
    return model


def _pinned_statuses(path: str) -> set[str]:
    """The models whose status the operator's file sets: the providers' lists don't change those."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return set()
    return {e["id"] for e in raw.get("models", []) if isinstance(e, dict) and "status" in e and "id" in e}
