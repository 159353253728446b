"""Reading catalog files: the shipped one, and the operator's file that changes it.

The operator's file (`[core] catalog = "models.toml"`) holds `[[models]]` tables and an
optional `[markup]` table:

    [markup]
    percent = 10          # on every priced model's list price
    anthropic = 15        # per provider, instead of `percent`

    [[models]]            # an id the shipped catalog lacks: a new model, every field given
    id = "openai/gpt-4o"
    ...
    [[models]]            # a shipped id: only the fields given change
    id = "openai/gpt-4.1"
    input_price = 2_100_000
    [[models]]
    id = "openai/o3-mini"
    hidden = true         # not listed, not served

Prices stay integer micro-USD per 1M tokens. Every mistake stops start-up with the file, the
line and the key at fault: tomllib keeps no positions, but each `[[models]]` entry starts at a
header line of its own, so counting headers finds the entry and a scan of its lines the key.
"""
from __future__ import annotations

import dataclasses
import pathlib
import re
import tomllib
from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal
from typing import Any

from router_core.catalog import LIFECYCLE, PRICE_FIELDS, ModelInfo
from router_core.prices import PACKAGE, PriceBook
from router_core.settings import PROVIDERS, ConfigError

SHIPPED = "the shipped catalog"

_FIELDS = {f.name: f for f in dataclasses.fields(ModelInfo)}
_REQUIRED = tuple(name for name, f in _FIELDS.items()
                  if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
# Fields the core fills in itself: never written in a file.
_DERIVED = {"price_source", "priced_by", "price_factor"}
_FILE_FIELDS = set(_FIELDS) - _DERIVED
# What a new model of the operator's may leave out, and what it then gets.
_NEW_MODEL_DEFAULTS = {"cached_input_price": 0, "status": "available", "created": 0}
_OPERATOR_ONLY = {"hidden", "markup_percent"}
_HEADER = re.compile(r"^\s*\[\[\s*models\s*\]\]")
_ANY_HEADER = re.compile(r"^\s*\[")


class CatalogError(ConfigError):
    """A catalog file the core cannot start with; the message names the file and line."""


class _Source:
    """A catalog file's text, for turning an entry index and a key into a line number."""

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self._lines = text.splitlines()
        self._headers = [n for n, line in enumerate(self._lines, start=1) if _HEADER.match(line)]

    def line(self, index: int | None = None, key: str | None = None) -> int | None:
        """The line of entry `index` (its `key =` line when there is one), or of a top-level key."""
        if index is None:
            start, end = 1, (self._first_table() or len(self._lines) + 1)
        elif index < len(self._headers):
            start = self._headers[index]
            end = next((n for n in range(start + 1, len(self._lines) + 1)
                        if _ANY_HEADER.match(self._lines[n - 1])), len(self._lines) + 1)
        else:
            return None  # an inline `models = [...]` array: no header to count
        if key is not None:
            pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
            for number in range(start, end):
                if pattern.match(self._lines[number - 1]):
                    return number
        return start if index is not None else None

    def table_line(self, table: str, key: str | None = None) -> int | None:
        """The line of `[table]`, or of `key =` inside it."""
        header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
        start = next((n for n, line in enumerate(self._lines, start=1) if header.match(line)), None)
        if start is None or key is None:
            return start
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(start + 1, len(self._lines) + 1):
            text = self._lines[number - 1]
            if _ANY_HEADER.match(text):
                break
            if pattern.match(text):
                return number
        return start

    def _first_table(self) -> int | None:
        return next((n for n, line in enumerate(self._lines, start=1) if _ANY_HEADER.match(line)), None)

    def error(self, message: str, index: int | None = None, key: str | None = None,
              line: int | None = None) -> CatalogError:
        line = line or self.line(index, key)
        return CatalogError(f"{self.name}, line {line}: {message}" if line else f"{self.name}: {message}")


def package_facts(book: PriceBook, provider: str, upstream_id: str) -> dict[str, Any] | None:
    """A model's prices (micro-USD per 1M tokens, base tier, now) and context from the package."""
    found = book.find(provider, upstream_id)
    if found is None:
        return None
    input_price, output_price, cached, write = found.list_prices()
    return {"input_price": input_price, "output_price": output_price, "cached_input_price": cached,
            "cache_write_input_price": write, "context_window": found.context_window or 128_000,
            "price_source": PACKAGE, "priced_by": found}


def parse_models(raw: Mapping[str, Any], text: str, name: str, book: PriceBook) -> list[ModelInfo]:
    """The models of the shipped catalog: prices and context from the package unless given."""
    source = _Source(text, name)
    unknown = sorted(set(raw) - {"models"})
    if unknown:
        raise source.error(f"unknown key{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}", None, unknown[0])
    models = []
    for index, entry in enumerate(_entries(raw, source)):
        _check_keys(entry, _FILE_FIELDS, source, index)
        facts = {}
        if not any(k in entry for k in PRICE_FIELDS):
            facts = package_facts(book, entry.get("provider", ""), entry.get("upstream_id", "")) or {}
            if not facts:
                raise source.error(f"`{entry.get('id')}`: the price package does not price this model, "
                                   "and the entry gives no prices", index)
        models.append(_model({**facts, **entry}, source, index))
    return models


def apply_operator_file(models: list[ModelInfo], path: str | pathlib.Path,
                        book: PriceBook | None = None) -> list[ModelInfo]:
    """The catalog after the operator's file: models added, overridden, hidden, marked up."""
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CatalogError(f"catalog file {path}: {exc.strerror or exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: {exc}") from None  # tomllib's message names the line
    source = _Source(text, str(path))
    return apply_operator_entries(models, raw, source, book)


def apply_operator_entries(models: list[ModelInfo], raw: Mapping[str, Any], source: _Source,
                           book: PriceBook | None = None) -> list[ModelInfo]:
    """The operator's parsed file applied: see apply_operator_file."""
    unknown = sorted(set(raw) - {"models", "markup"})
    if unknown:
        raise source.error(f"unknown key{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                           "(expected [[models]] tables and a [markup] table)", None, unknown[0])
    markup = _markup(raw.get("markup", {}), source)
    by_id = {m.id: m for m in models}
    hidden: set[str] = set()
    per_model: dict[str, Decimal] = {}
    seen: dict[str, int] = {}
    for index, entry in enumerate(_entries(raw, source)):
        _check_keys(entry, _FILE_FIELDS | _OPERATOR_ONLY, source, index)
        model_id = entry.get("id")
        if not isinstance(model_id, str) or not model_id:
            raise source.error("a [[models]] entry needs an `id`", index)
        if model_id in seen:
            raise source.error(f"`{model_id}` is listed twice (first at line {source.line(seen[model_id])})", index)
        seen[model_id] = index
        if "markup_percent" in entry:
            per_model[model_id] = _percent(entry["markup_percent"], source, index, "markup_percent")
        if "hidden" in entry:
            if not isinstance(entry["hidden"], bool):
                raise source.error(f"`{model_id}`: hidden must be true or false", index, "hidden")
            if entry["hidden"]:
                hidden.add(model_id)
        fields = {k: v for k, v in entry.items() if k not in _OPERATOR_ONLY}
        if any(k in fields for k in PRICE_FIELDS):  # the operator's prices: billed flat, as written
            fields.update(price_source="operator file", priced_by=None, price_factor=Decimal(1))
        base = by_id.get(model_id) or (_package_model(book, model_id) if book is not None else None)
        if base is not None:
            merged = {f: getattr(base, f) for f in _FIELDS}
            merged["endpoints"] = sorted(merged["endpoints"])
            if "status" in fields and "status_note" not in fields:
                merged["status_note"] = ""  # the shipped note spoke of the shipped status
            by_id[model_id] = _model({**merged, **fields}, source, index)
        elif model_id in hidden or set(fields) == {"id"}:
            raise source.error(f"`{model_id}` is not a model of the shipped catalog, so there is nothing to "
                               "hide or override; a new model needs every field", index, "id")
        else:
            missing = [f for f in _REQUIRED if f not in fields and f not in _NEW_MODEL_DEFAULTS]
            if missing:
                raise source.error(f"`{model_id}` is not a model of the shipped catalog; as a new model it "
                                   f"lacks {', '.join(missing)}", index)
            by_id[model_id] = _model({**_NEW_MODEL_DEFAULTS, **fields}, source, index)
    return [_marked_up(m, per_model.get(m.id, markup.get(m.provider, markup.get("percent", Decimal(0)))))
            for m in by_id.values() if m.id not in hidden]


def _entries(raw: Mapping[str, Any], source: _Source) -> list[Mapping[str, Any]]:
    entries = raw.get("models", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise source.error("models must be an array of tables ([[models]])", None, "models")
    return entries


def _check_keys(entry: Mapping[str, Any], allowed: set[str], source: _Source, index: int) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        label = f" `{entry['id']}`" if isinstance(entry.get("id"), str) else ""
        raise source.error(f"unknown key{'s' if len(unknown) > 1 else ''} in [[models]]{label}: {', '.join(unknown)}",
                           index, unknown[0])


def _model(entry: Mapping[str, Any], source: _Source, index: int) -> ModelInfo:
    """A checked ModelInfo from one entry's fields."""
    model_id = entry.get("id")
    label = f"`{model_id}`" if isinstance(model_id, str) else "[[models]] entry"
    missing = [f for f in _REQUIRED if f not in entry]
    if missing:
        raise source.error(f"{label} lacks {', '.join(missing)}", index)

    def fail(key: str, problem: str) -> CatalogError:
        return source.error(f"{label}: {key} {problem}", index, key)

    values = dict(entry)
    values.setdefault("price_source", "operator file" if source.name != SHIPPED else "")
    for key in ("id", "provider", "upstream_id", "display_name", "status", "status_note"):
        if key in values and not isinstance(values[key], str):
            raise fail(key, f"must be a string, not {type(values[key]).__name__}")
    if values["provider"] not in PROVIDERS:
        raise fail("provider", f"must be one of {', '.join(PROVIDERS)}, not {values['provider']!r}")
    if values["id"].partition("/")[0] != values["provider"] or not values["id"].partition("/")[2]:
        raise fail("id", f"must be `{values['provider']}/<model>` (provider/model)")
    if not values["upstream_id"] or not values["display_name"]:
        raise fail("upstream_id" if not values["upstream_id"] else "display_name", "must not be empty")
    if values["status"] not in LIFECYCLE:
        raise fail("status", f"must be one of {', '.join(LIFECYCLE)}, not {values['status']!r}")
    if (values["status"] == "test") != (values["provider"] == "sandbox"):
        raise fail("status", "`test` is the sandbox models' status, and theirs only")
    for key in (*PRICE_FIELDS, "context_window", "created"):
        value = values.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            unit = " (integer micro-USD per 1M tokens: 2_500_000 is $2.50)" if key in PRICE_FIELDS else ""
            raise fail(key, f"must be a whole number, 0 or more{unit}, not {value!r}")
    if values["context_window"] <= 0:
        raise fail("context_window", "must be positive")
    endpoints = values["endpoints"]
    if not isinstance(endpoints, list) or not endpoints or not all(isinstance(e, str) and e for e in endpoints):
        raise fail("endpoints", 'must be a list of endpoints, e.g. ["chat/completions", "responses"]')
    values["endpoints"] = frozenset(e.strip("/") for e in endpoints)
    return ModelInfo(**values)


def _markup(table: Any, source: _Source) -> dict[str, Decimal]:
    if not isinstance(table, dict):
        raise source.error("markup must be a table ([markup])", None, "markup")
    allowed = {"percent", *(p for p in PROVIDERS if p != "sandbox")}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise source.error(f"unknown key{'s' if len(unknown) > 1 else ''} in [markup]: {', '.join(unknown)} "
                           f"(expected percent or a provider: {', '.join(sorted(allowed - {'percent'}))})",
                           line=source.table_line("markup", unknown[0]))
    return {key: _percent(value, source, None, key, source.table_line("markup", key)) for key, value in table.items()}


def _percent(value: Any, source: _Source, index: int | None, key: str, line: int | None = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
        raise source.error(f"{key} must be a percentage from 0 to 1000, not {value!r}", index, key, line)
    return Decimal(str(value))


def _marked_up(model: ModelInfo, percent: Decimal) -> ModelInfo:
    """The model at the customer's price: each list price plus `percent`, rounded up to a micro-dollar."""
    if not percent:
        return model
    factor = (Decimal(100) + percent) / Decimal(100)
    return dataclasses.replace(model, price_factor=model.price_factor * factor, **{
        f: int((getattr(model, f) * factor).to_integral_value(rounding=ROUND_CEILING)) for f in PRICE_FIELDS})


def _package_model(book: PriceBook, model_id: str) -> ModelInfo | None:
    """A model the price package knows but the catalog lacks now (no channel lists it), as a base."""
    from router_core.catalog_build import discovered
    provider, _, upstream = model_id.partition("/")
    return discovered(book, provider, upstream) if provider in PROVIDERS and upstream else None
