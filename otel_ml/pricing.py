"""Token prices and cost calculation, from a bundled table users can override.

Design choices, each answering a known pain with other tools:
- no network: the table ships with the package (a price fetch at start-up
  stalls air-gapped pods);
- an unknown model gets no cost at all rather than $0, and is counted on
  ``llm.cost.unpriced`` so that a missing price is visible;
- versioned names (``gpt-4o-mini-2024-07-18``) resolve to their base entry and
  deployment names (Azure) resolve through user-given aliases.

The bundled table is JSON, so pricing needs no YAML parser; PyYAML
(``otel-ml[yaml]``) is imported only when a user's override file is YAML.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

PricingSource = str | Path | Mapping[str, Any] | None

# Date or revision suffixes providers append to a base model name:
# -2024-07-18 (OpenAI), -20241022 (Anthropic), -2411 (Mistral), @20241022
# (Vertex), -latest, -preview / -preview-06-17, -001 / -v2 (Google, Bedrock).
_VERSION_SUFFIX = re.compile(
    r"(@.*|-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|-preview(-[\w-]*)?|-exp(-[\w-]*)?"
    r"|-\d{3}|-v\d+(:\d+)?)$"
)


_LOOKUP_CACHE_SIZE = 1024


# Bedrock model ids: [region.]provider.model, e.g. us.anthropic.claude-3-5-sonnet-20241022-v2:0
_BEDROCK_PREFIX = re.compile(r"^(?:[a-z]{2}\.)?(?:anthropic|meta|mistral|amazon|cohere|ai21)\.")


class PricingError(ValueError):
    """A price table or override is malformed."""


@dataclass(frozen=True)
class Price:
    """List price of one model, USD per 1M tokens."""

    model: str
    input: float
    output: float
    cached_input: float | None = None
    cache_write_input: float | None = None
    as_of: str = ""
    source: str = ""

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_input_tokens: int = 0,
    ) -> float:
        """Cost in USD. ``input_tokens`` includes the cache-read and
        cache-write ones (GenAI semconv); each part is billed at its own
        price, or at the input price where the table has none."""
        cached = min(max(cached_input_tokens, 0), input_tokens)
        written = min(max(cache_write_input_tokens, 0), input_tokens - cached)
        cached_price = self.input if self.cached_input is None else self.cached_input
        write_price = self.input if self.cache_write_input is None else self.cache_write_input
        micro_usd = (
            (input_tokens - cached - written) * self.input
            + cached * cached_price
            + written * write_price
            + output_tokens * self.output
        )
        return micro_usd / 1_000_000


class PriceTable:
    """Model name -> :class:`Price`, with alias and version-suffix resolution."""

    def __init__(self, prices: Mapping[str, Price], aliases: Mapping[str, str]) -> None:
        self._prices = {name.lower(): price for name, price in prices.items()}
        self._aliases = {name.lower(): target.lower() for name, target in aliases.items()}
        self._cache: dict[str, Price | None] = {}

    @classmethod
    def load(cls, override: PricingSource = None) -> PriceTable:
        """The bundled table, extended and overridden by ``override``."""
        bundled_prices, bundled_aliases = _bundled()
        prices, aliases = dict(bundled_prices), dict(bundled_aliases)
        if override is not None:
            extra_prices, extra_aliases = _parse(_read(override), origin=_origin(override))
            prices.update(extra_prices)
            aliases.update(extra_aliases)
        return cls(prices, aliases)

    def lookup(self, model: str) -> Price | None:
        """The price for ``model``, or None when the model is unknown."""
        key = model.strip().lower()
        if key not in self._cache:
            if len(self._cache) >= _LOOKUP_CACHE_SIZE:  # model names can come from user input
                self._cache.clear()
            self._cache[key] = self._resolve(key)
        return self._cache[key]

    def _resolve(self, key: str) -> Price | None:
        for candidate in _candidates(key):
            candidate = self._aliases.get(candidate, candidate)
            if candidate in self._prices:
                return self._prices[candidate]
        return None

    def __len__(self) -> int:
        return len(self._prices)


@functools.cache
def _bundled() -> tuple[dict[str, Price], dict[str, str]]:
    """The bundled table, parsed once per process."""
    bundled = resources.files("otel_ml") / "data" / "prices.json"
    document = json.loads(bundled.read_text(encoding="utf-8"))
    return _parse(document, origin="bundled prices.json")


def _candidates(key: str) -> list[str]:
    """Names to try, most specific first: as given, without provider prefix,
    then with version suffixes stripped one at a time."""
    names = [key]
    if "/" in key:
        names.append(key.rsplit("/", 1)[-1])
    bare = _BEDROCK_PREFIX.sub("", names[-1])
    if bare != names[-1]:
        names.append(bare)
    stripped = names[-1]
    while True:
        shorter = _VERSION_SUFFIX.sub("", stripped)
        if shorter == stripped or not shorter:
            break
        names.append(shorter)
        stripped = shorter
    return names


def _read(source: str | Path | Mapping[str, Any]) -> Any:
    if isinstance(source, Mapping):
        return source
    if not isinstance(source, (str, Path)) or "\x00" in str(source):
        raise PricingError(f"pricing must be a file path or a mapping, got {type(source).__name__}")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PricingError(f"cannot read pricing file {path}: {exc}") from exc
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise PricingError(f"pricing file {path} is not valid JSON: {exc}") from exc
    return _read_yaml(path, text)


def _read_yaml(path: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise PricingError(
            f"pricing file {path} is YAML, which needs PyYAML: install 'otel-ml[yaml]' "
            "or give the prices as a .json file"
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PricingError(f"pricing file {path} is not valid YAML: {exc}") from exc


def _origin(source: str | Path | Mapping[str, Any]) -> str:
    return "pricing mapping" if isinstance(source, Mapping) else f"pricing file {source}"


def _parse(document: Any, origin: str) -> tuple[dict[str, Price], dict[str, str]]:
    if not isinstance(document, Mapping):
        raise PricingError(f"{origin}: expected a mapping with 'models' and/or 'aliases'")
    currency = document.get("currency", "USD")
    if currency != "USD":
        raise PricingError(f"{origin}: only USD prices are supported, got {currency!r}")
    models = document.get("models") or {}
    aliases = document.get("aliases") or {}
    if not isinstance(models, Mapping) or not isinstance(aliases, Mapping):
        raise PricingError(f"{origin}: 'models' and 'aliases' must be mappings")
    prices = {str(name): _price(str(name), entry, origin) for name, entry in models.items()}
    return prices, {str(alias): str(target) for alias, target in aliases.items()}


def _price(name: str, entry: Any, origin: str) -> Price:
    if not isinstance(entry, Mapping):
        raise PricingError(f"{origin}: model {name!r} must map to {{input, output, ...}}")
    try:
        values = {
            key: float(entry[key])
            for key in ("input", "output", "cached_input", "cache_write_input")
            if key in entry
        }
        price = Price(
            model=name,
            input=values["input"],
            output=values["output"],
            cached_input=values.get("cached_input"),
            cache_write_input=values.get("cache_write_input"),
            as_of=str(entry.get("as_of", "")),
            source=str(entry.get("source", "")),
        )
    except KeyError as exc:
        raise PricingError(f"{origin}: model {name!r} lacks {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise PricingError(f"{origin}: model {name!r} has a non-numeric price: {exc}") from exc
    values_given = (
        price.input,
        price.output,
        price.cached_input or 0.0,
        price.cache_write_input or 0.0,
    )
    if not all(math.isfinite(value) for value in values_given):
        raise PricingError(f"{origin}: model {name!r} has a non-finite price")
    if min(values_given) < 0:
        raise PricingError(f"{origin}: model {name!r} has a negative price")
    return price
