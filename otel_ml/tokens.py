"""Local token counting with tiktoken, fully offline.

Provider-reported usage always wins; this module is the fallback when a
provider (or a stream without ``include_usage``) reports none. tiktoken
downloads its BPE rank files on first use, which fails on air-gapped hosts
and adds a network call to a request path. otel-ml therefore ships the two
rank files it needs, gzipped, inside the package (taken from the MIT-licensed
``bpe-openai`` 0.1.4 wheel) and verifies each against the upstream sha256
that tiktoken itself pins before building the encoding.

tiktoken is an optional dependency (``otel-ml[tokens]``) and is imported on the
first local count, never at ``import otel_ml``: building an encoding holds the
interpreter lock for about 0.3 s, which must not land on an app's first
requests unless a count is really needed. Without tiktoken, a local count is a
length-based estimate (about 4 characters per token), flagged
``llm.usage.estimated`` like every local count, and a warning names the extra.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import math
import threading
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from otel_ml._safety import missing_extra, report

if TYPE_CHECKING:
    import tiktoken


_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class _EncodingSpec:
    name: str
    sha256: str  # of the uncompressed rank file, as pinned by tiktoken_ext.openai_public
    pat_str: str
    special_tokens: dict[str, int]


_CL100K = _EncodingSpec(
    name="cl100k_base",
    sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    pat_str=(
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"""
        r"""| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    ),
    special_tokens={
        _ENDOFTEXT: 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        _ENDOFPROMPT: 100276,
    },
)

_O200K = _EncodingSpec(
    name="o200k_base",
    sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    pat_str="|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
    special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
)

ENCODINGS: dict[str, _EncodingSpec] = {spec.name: spec for spec in (_CL100K, _O200K)}

# Unknown models (Llama, Mistral, Gemini, Claude...) get o200k_base: none of
# them uses an OpenAI vocabulary, so every local count for them is an estimate
# (flagged llm.usage.estimated); o200k_base is the newest, most multilingual one.
DEFAULT_ENCODING = "o200k_base"

# Checked in order, so "gpt-4o" and "gpt-4.1" match before "gpt-4".
_MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-5", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-oss", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),  # Azure deployment spelling
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada", "cl100k_base"),
)

# OpenAI's own rule of thumb for English text; only used without tiktoken.
_CHARS_PER_TOKEN = 4

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}
_tiktoken_missing = False


class TokenizerDataError(RuntimeError):
    """A bundled BPE rank file is missing or does not match its pinned sha256."""


def encoding_name_for_model(model: str) -> str:
    """Return the tiktoken encoding name used to count tokens for ``model``."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    name = name.removeprefix("ft:")  # fine-tuned: ft:gpt-4o-mini-2024-07-18:org::id
    for prefix, encoding in _MODEL_PREFIXES:
        if name.startswith(prefix):
            return encoding
    return DEFAULT_ENCODING


def get_encoding(name: str) -> tiktoken.Encoding:
    """Build (once per process) the named encoding from the bundled rank file."""
    encoding = _loaded.get(name)
    if encoding is not None:
        return encoding
    with _lock:
        if name not in _loaded:
            _loaded[name] = _build(ENCODINGS[name])
        return _loaded[name]


def preload(model: str) -> None:
    """Build ``model``'s tokenizer now (about 0.3 s holding the interpreter lock).

    Call it at start-up, before a readiness probe passes, in a service that
    knows it will count tokens locally (a backend that reports no usage, or
    failed calls priced from their prompt); otherwise the first local count
    pays the load on a request path, delaying requests in flight. Never raises.
    """
    try:
        get_encoding(encoding_name_for_model(model))
    except ImportError as exc:
        _tiktoken_unavailable(exc)
    except Exception as exc:  # telemetry never breaks the app
        report("tokenizer preload", exc)


def count_tokens(text: str, model: str) -> int:
    """Count ``text`` in the encoding of ``model``.

    Special-token strings are counted as ordinary text, which is what a
    provider bills for user content that happens to contain them.
    """
    if not text:
        return 0
    if _tiktoken_missing:
        return _approximate(text)
    try:
        encoding = get_encoding(encoding_name_for_model(model))
    except ImportError as exc:
        _tiktoken_unavailable(exc)
        return _approximate(text)
    return len(encoding.encode_ordinary(text))


def _approximate(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def _tiktoken_unavailable(exc: ImportError) -> None:
    # Remembered so that later counts skip a failing import (a sys.path scan each).
    global _tiktoken_missing
    _tiktoken_missing = True
    missing_extra("a local token count", exc, "tokens",
                  "counts the provider did not report are estimated from text length")


def _build(spec: _EncodingSpec) -> tiktoken.Encoding:
    import tiktoken

    return tiktoken.Encoding(
        name=spec.name,
        pat_str=spec.pat_str,
        mergeable_ranks=_load_ranks(spec),
        special_tokens=spec.special_tokens,
    )


def _load_ranks(spec: _EncodingSpec) -> dict[bytes, int]:
    resource = resources.files("otel_ml") / "_tokenizers" / f"{spec.name}.tiktoken.gz"
    try:
        raw = gzip.decompress(resource.read_bytes())
    except (OSError, EOFError) as exc:
        raise TokenizerDataError(f"cannot read bundled tokenizer {spec.name}: {exc}") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise TokenizerDataError(
            f"bundled tokenizer {spec.name} has sha256 {digest}, expected {spec.sha256}"
        )
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks
