"""Chroma's distances as similarity scores.

Chroma returns a distance per hit, smaller is closer, in the collection's
space (hnswlib's definitions, which Chroma keeps for every index):

- ``cosine``: ``1 - cos(q, d)``, so the similarity is ``1 - distance``;
- ``ip``: ``1 - q·d``, so the similarity (the dot product) is ``1 - distance``;
- ``l2``: the *squared* Euclidean distance, which has no similarity of its
  own: ``1 / (1 + distance)`` maps it monotonically into (0, 1], 1 for an
  exact match (the mapping LangChain's Chroma store uses for relevance).

The space is fixed when a collection is created (Chroma cannot modify it), so
it is read once per collection id from what the client already holds (its
configuration, else its ``hnsw:space`` metadata, else Chroma's default
``l2``): no request to the server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

COSINE = "cosine"
L2 = "l2"
IP = "ip"
DEFAULT_SPACE = L2  # Chroma's default when a collection names none

# Chroma computes in float32: an exact match can come back as a distance of
# -1e-7, so cosine similarities are clamped to [-1, 1] and squared distances to
# >= 0 (a score of 1.0000001 would fall past the score histogram's last bucket).
_TO_SIMILARITY: dict[str, Callable[[float], float]] = {
    COSINE: lambda distance: min(1.0, max(-1.0, 1.0 - distance)),
    IP: lambda distance: 1.0 - distance,
    L2: lambda distance: 1.0 / (1.0 + max(0.0, distance)),
}

# collection id -> space. Ids are UUIDs and a space never changes, so entries
# never go stale; the bound only keeps a process with endless collections small.
_MAX_CACHED = 4096
_spaces: dict[Any, str] = {}


def similarity(space: str, distance: float) -> float | None:
    """The similarity score of one distance; None for a space otel-ml does not
    know (the raw distance is still recorded) or a distance that is no number."""
    convert = _TO_SIMILARITY.get(space)
    if convert is None or not math.isfinite(distance):
        return None
    return convert(distance)


def space_of(collection: Any) -> str:
    """The distance function of ``collection``, cached by its id."""
    key = getattr(collection, "id", None)
    if key is not None:
        cached = _spaces.get(key)
        if cached is not None:
            return cached
    space = _read_space(collection)
    if key is not None:
        if len(_spaces) >= _MAX_CACHED:
            _spaces.clear()
        _spaces[key] = space
    return space


def _read_space(collection: Any) -> str:
    configuration = getattr(collection, "configuration_json", None)
    if isinstance(configuration, Mapping):
        for index in ("hnsw", "spann"):  # spann: distributed Chroma and Chroma Cloud
            settings = configuration.get(index)
            if isinstance(settings, Mapping) and isinstance(settings.get("space"), str):
                return str(settings["space"]).lower()
    metadata = getattr(collection, "metadata", None)
    if isinstance(metadata, Mapping) and isinstance(metadata.get("hnsw:space"), str):
        return str(metadata["hnsw:space"]).lower()
    return DEFAULT_SPACE
