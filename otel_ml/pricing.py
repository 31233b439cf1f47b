"""Token prices and cost calculation, from a bundled table users can override.

Design choices, each answering a known pain with other tools:
- no network: the table ships with the package (a price fetch at start-up
  stalls air-gapped pods);
- an unknown model gets no cost at all rather than $0, and is counted on
  ``llm.cost.unpriced`` so that a missing price is visible;
- a price is never guessed: a dated snapshot (``gpt-4o-2024-05-13``) can cost
  more or less than its family (``gpt-4o``), so a dated name resolves to its
  family only where the family entry says its snapshots share its price
  (``"snapshots": "same-price"``, or a list of the snapshots that do);
  otherwise it needs its own entry, or it is unpriced;
- provider prefixes (``openai/``, Bedrock's ``us.anthropic.``) name the same
  model and are always dropped; deployment names (Azure) resolve through
  user-given aliases.

The bundled table is JSON, so pricing needs no YAML parser; PyYAML
(``otel-ml[yaml]``) is imported only when a user's override file is YAML.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

PricingSource = str | Path | Mapping[str, Any] | None

SAME_PRICE: Final = "same-price"
"""The ``snapshots`` value saying that every dated version of a model costs its price."""

# A snapshot suffix: the date or revision providers append to a model name:
# -2024-07-18 (OpenAI), -20241022 (Anthropic), -2411 / -0613 (Mistral, older
# OpenAI), -001 (Gemini), @20241022 (Vertex), -v2 / -v2:0 (Vertex, Bedrock),
# -latest (a moving pointer to one of them). Previews and experiments are not
# snapshots but models of their own, priced apart (Gemini 2.5 Flash preview
# cost $0.15/$0.60 against $0.30/$2.50 for the GA model; experimental models
# are free), so -preview and -exp are never stripped.
_SNAPSHOT_SUFFIX = re.compile(
    r"(@.*|-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-\d{3}|-latest|-v\d+(:\d+)?)$"
)

_LOOKUP_CACHE_SIZE = 1024

# Bedrock model ids: [region.]provider.model, e.g. us.anthropic.claude-3-5-sonnet-20241022-v2:0
_BEDROCK_PREFIX = re.compile(r"^(?:[a-z]{2}\.)?(?:anthropic|meta|mistral|amazon|cohere|ai21)\.")


class PricingError(ValueError):
    """A price table or override is malformed."""


@dataclass(frozen=True)
class Price:
    """List price of one model, USD per 1M tokens.

    ``snapshots`` says which dated names of the model cost this price:
    :data:`SAME_PRICE` (all of them), a tuple of lower-case dated names, or
    None (not stated: none, and an override entry inherits the bundled one's).
    """

    model: str
    input: float
    output: float
    cached_input: float | None = None
    cache_write_input: float | None = None
    as_of: str = ""
    source: str = ""
    snapshots: str | tuple[str, ...] | None = None

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

    def covers(self, snapshot: str) -> bool:
        """Whether the dated name ``snapshot`` of this model costs this price."""
        if self.snapshots == SAME_PRICE:
            return True
        return isinstance(self.snapshots, tuple) and snapshot.lower() in self.snapshots


# What one lookup found: (price, the family that refused to price a dated name).
_Resolution = tuple[Price | None, Price | None]


class PriceTable:
    """Model name -> :class:`Price`, with alias, prefix and snapshot resolution."""

    def __init__(self, prices: Mapping[str, Price], aliases: Mapping[str, str]) -> None:
        self._prices = {name.lower(): price for name, price in prices.items()}
        self._aliases = {name.lower(): target.lower() for name, target in aliases.items()}
        self._cache: dict[str, _Resolution] = {}

    @classmethod
    def load(cls, override: PricingSource = None) -> PriceTable:
        """The bundled table, extended and overridden by ``override``.

        An override entry that does not state ``snapshots`` keeps the bundled
        entry's: a negotiated price for ``gpt-4o`` then also applies to the
        snapshots the bundled table lists as sharing the ``gpt-4o`` price.
        """
        bundled_prices, bundled_aliases = _bundled()
        prices, aliases = dict(bundled_prices), dict(bundled_aliases)
        if override is not None:
            extra_prices, extra_aliases = _parse(_read(override), origin=_origin(override))
            prices.update(_inherit_snapshots(extra_prices, bundled_prices))
            aliases.update(extra_aliases)
        return cls(prices, aliases)

    def lookup(self, model: str) -> Price | None:
        """The price for ``model``, or None when the model is unknown or is a
        snapshot whose price the table does not know."""
        return self._resolution(model)[0]

    def snapshot_family(self, model: str) -> Price | None:
        """For a dated name :meth:`lookup` leaves unpriced, the family entry it
        was not allowed to fall back to (that family prices its snapshots
        individually); None otherwise."""
        return self._resolution(model)[1]

    def _resolution(self, model: str) -> _Resolution:
        key = model.strip().lower()
        if key not in self._cache:
            if len(self._cache) >= _LOOKUP_CACHE_SIZE:  # model names can come from user input
                self._cache.clear()
            self._cache[key] = self._resolve(key)
        return self._cache[key]

    def _resolve(self, key: str) -> _Resolution:
        for name, suffix in _candidates(key):
            target = self._aliases.get(name, name)
            # An alias with a date (Azure deployment "prod-chat-2024-05-13" -> gpt-4o) names
            # the dated model of its target, which may have an entry of its own.
            dated = self._prices.get(target + suffix) if suffix and target != name else None
            if dated is not None:
                return dated, None
            price = self._prices.get(target)
            if price is None:
                continue
            if not suffix or price.covers(target + suffix):
                return price, None
            # The nearest family refuses: a more distant one must not price it either.
            return None, price
        return None, None

    def __len__(self) -> int:
        return len(self._prices)


@functools.cache
def _bundled() -> tuple[dict[str, Price], dict[str, str]]:
    """The bundled table, parsed once per process."""
    bundled = resources.files("otel_ml") / "data" / "prices.json"
    document = json.loads(bundled.read_text(encoding="utf-8"))
    return _parse(document, origin="bundled prices.json")


def _inherit_snapshots(prices: dict[str, Price], bundled: Mapping[str, Price]) -> dict[str, Price]:
    by_key = {name.lower(): price for name, price in bundled.items()}
    inherited = dict(prices)
    for name, price in prices.items():
        base = by_key.get(name.lower())
        if price.snapshots is None and base is not None:
            inherited[name] = dataclasses.replace(price, snapshots=base.snapshots)
    return inherited


def _candidates(key: str) -> list[tuple[str, str]]:
    """(name, snapshot suffix stripped from it) pairs to try, most specific
    first: as given, without provider prefixes (same model, suffix ""), then
    without snapshot suffixes one at a time."""
    names = [key]
    if "/" in key:
        names.append(key.rsplit("/", 1)[-1])
    bare = _BEDROCK_PREFIX.sub("", names[-1])
    if bare != names[-1]:
        names.append(bare)
    model = names[-1]
    pairs = [(name, "") for name in names]
    pairs.extend((base, model[len(base) :]) for base in _bases(model))
    return pairs


def _bases(model: str) -> list[str]:
    """``model`` without its snapshot suffixes, one more removed each time."""
    bases: list[str] = []
    stripped = model
    while (shorter := _SNAPSHOT_SUFFIX.sub("", stripped)) not in (stripped, ""):
        bases.append(shorter)
        stripped = shorter
    return bases


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
    snapshots = _snapshots(name, entry, origin)
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
            snapshots=snapshots,
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


def _snapshots(name: str, entry: Mapping[str, Any], origin: str) -> str | tuple[str, ...] | None:
    """The entry's ``snapshots``: SAME_PRICE, its listed dated names, or None if absent."""
    if "snapshots" not in entry:
        return None
    value = entry["snapshots"]
    if value == SAME_PRICE:
        return SAME_PRICE
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise PricingError(
            f"{origin}: model {name!r} has 'snapshots' {value!r}: expected {SAME_PRICE!r} "
            "or a list of its dated names"
        )
    listed = tuple(snapshot.strip().lower() for snapshot in value)
    for snapshot in listed:
        if name.lower() not in _bases(snapshot):
            raise PricingError(
                f"{origin}: model {name!r} lists snapshot {snapshot!r}, which is not "
                f"{name!r} followed by a date or version suffix"
            )
    return listed
