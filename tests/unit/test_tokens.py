"""Offline token counting: the bundled BPE files give exactly tiktoken's counts,
the model -> encoding mapping matches tiktoken's, nothing is fetched."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import tiktoken
import tiktoken.load
import tiktoken.model

from otel_ml import _safety, tokens

ENCODING_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}

TEXTS = [
    "",
    " ",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.\n\nSecond paragraph\twith a tab.",
    "naïve café, Straße, Ελληνικά, русский текст, עברית, العربية",
    "日本語のテキストと中文文本，还有한국어 문장。",
    "emoji 👩🏽‍💻🚀🇫🇷 and combining e\u0301 marks",
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    '{"id": 12345, "tags": ["a", "b"], "score": 0.8731}',
    "<|endoftext|> and <|fim_prefix|>x<|fim_suffix|> and <|endofprompt|>",
    "numbers 1234567890 3.14159 -42 1e-9 0xDEADBEEF",
    "    indented\r\n\r\n\r\ntrailing spaces   ",
    "a" * 5000,
    "word " * 1000,
]


@pytest.fixture(scope="module")
def upstream_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TIKTOKEN_CACHE_DIR holding the bundled rank files under the names
    tiktoken's read_file_cached looks for: sha1 of the download URL."""
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name, url in ENCODING_URLS.items():
        bundled = resources.files("otel_ml") / "_tokenizers" / f"{name}.tiktoken.gz"
        raw = gzip.decompress(bundled.read_bytes())
        # Otherwise tiktoken would discard the file and try to download it.
        assert hashlib.sha256(raw).hexdigest() == tokens.ENCODINGS[name].sha256
        (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(raw)
    return cache


@pytest.fixture
def upstream(
    upstream_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, tiktoken.Encoding]]:
    """tiktoken's own encodings, built from the cache, with downloads forbidden."""

    def no_download(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {blobpath}")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(upstream_cache))
    monkeypatch.setattr(tiktoken.load, "read_file", no_download)
    yield {name: tiktoken.get_encoding(name) for name in ENCODING_URLS}


def test_pinned_hashes_are_tiktokens(upstream: dict[str, tiktoken.Encoding]) -> None:
    # If tiktoken built the encodings from our cache, the cached files passed
    # tiktoken's own expected_hash check: our pins and the bundle agree with it.
    assert set(upstream) == set(tokens.ENCODINGS)


@pytest.mark.parametrize("name", sorted(ENCODING_URLS))
def test_bundled_encoding_is_tiktokens_encoding(
    upstream: dict[str, tiktoken.Encoding], name: str
) -> None:
    ours = tokens.get_encoding(name)
    theirs = upstream[name]
    assert ours.n_vocab == theirs.n_vocab
    assert ours.special_tokens_set == theirs.special_tokens_set
    assert ours._pat_str == theirs._pat_str
    for special in theirs.special_tokens_set:
        assert ours.encode_single_token(special) == theirs.encode_single_token(special)


@pytest.mark.parametrize("name", sorted(ENCODING_URLS))
@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_token_ids_equal_tiktokens(
    upstream: dict[str, tiktoken.Encoding], name: str, text: str
) -> None:
    ours = tokens.get_encoding(name)
    assert ours.encode_ordinary(text) == upstream[name].encode_ordinary(text)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [("gpt-4o-mini", "o200k_base"), ("gpt-4", "cl100k_base"), ("some-llama", "o200k_base")],
)
@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_count_tokens_equals_tiktoken(
    upstream: dict[str, tiktoken.Encoding], model: str, encoding: str, text: str
) -> None:
    # User content is billed as text: special-token strings count as ordinary text.
    expected = len(upstream[encoding].encode(text, disallowed_special=()))
    assert tokens.count_tokens(text, model) == expected


def test_special_token_strings_are_not_single_tokens() -> None:
    assert tokens.count_tokens("<|endoftext|>", "gpt-4o") > 1
    assert tokens.count_tokens("<|endoftext|>", "gpt-4") > 1


def test_empty_text_is_zero_tokens() -> None:
    assert tokens.count_tokens("", "gpt-4o") == 0
    assert tokens.count_tokens("", "unknown-model") == 0


# Every OpenAI model tiktoken knows by exact name, plus versioned, fine-tuned,
# Azure and provider-prefixed spellings of the families the issue names.
OPENAI_MODELS = [
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.5-preview",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4o-2024-08-06",
    "chatgpt-4o-latest",
    "o1",
    "o1-mini",
    "o3",
    "o3-mini",
    "o4-mini",
    "gpt-4",
    "gpt-4-0613",
    "gpt-4-turbo",
    "gpt-4-32k",
    "gpt-3.5-turbo",
    "gpt-3.5-turbo-0125",
    "gpt-35-turbo",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
    "ft:gpt-4o-mini-2024-07-18:acme::abc123",
    "ft:gpt-3.5-turbo-0125:acme::abc123",
    "ft:gpt-4-0613:acme::abc123",
]


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_model_encoding_matches_tiktoken(model: str) -> None:
    assert tokens.encoding_name_for_model(model) == tiktoken.model.encoding_name_for_model(model)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("openai/gpt-4o-mini", "o200k_base"),
        ("azure/gpt-35-turbo", "cl100k_base"),
        ("  GPT-4O  ", "o200k_base"),
        ("GPT-4-Turbo", "cl100k_base"),
    ],
)
def test_prefixes_case_and_spaces_do_not_change_the_encoding(model: str, encoding: str) -> None:
    assert tokens.encoding_name_for_model(model) == encoding


@pytest.mark.parametrize(
    "model", ["claude-3-5-sonnet", "gemini-2.5-pro", "mistral-large", "llama-3-70b", ""]
)
def test_unknown_models_use_the_documented_default(model: str) -> None:
    assert tokens.encoding_name_for_model(model) == tokens.DEFAULT_ENCODING
    assert tokens.DEFAULT_ENCODING in tokens.ENCODINGS


def test_bundled_files_load_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the encodings from scratch never reaches tiktoken's loaders."""

    def forbidden(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("otel_ml must not fetch tokenizer files")

    monkeypatch.setattr(tiktoken.load, "read_file", forbidden)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", forbidden)
    monkeypatch.setattr(tokens, "_loaded", {})
    assert tokens.count_tokens("hello world", "gpt-4o") == 2
    assert tokens.count_tokens("hello world", "gpt-4") == 2
    assert set(tokens._loaded) == {"o200k_base", "cl100k_base"}


def test_corrupted_bundle_is_rejected_by_its_sha256() -> None:
    wrong = dataclasses.replace(tokens.ENCODINGS["cl100k_base"], sha256="0" * 64)
    with pytest.raises(tokens.TokenizerDataError, match="sha256"):
        tokens._load_ranks(wrong)


def test_missing_bundle_is_a_clear_error() -> None:
    missing = dataclasses.replace(tokens.ENCODINGS["cl100k_base"], name="p50k_base")
    with pytest.raises(tokens.TokenizerDataError, match="p50k_base"):
        tokens._load_ranks(missing)


# --- without tiktoken (it is the optional `tokens` extra) ----------------------------------------


@pytest.fixture
def no_tiktoken(monkeypatch: pytest.MonkeyPatch) -> None:
    """tiktoken not importable, and nothing built or remembered yet."""
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # import raises ImportError
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "_tiktoken_missing", False)
    monkeypatch.setattr(_safety, "_reported", set())


def test_without_tiktoken_counts_are_length_estimates_and_the_extra_is_named(
    no_tiktoken: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="otel_ml")
    assert tokens.count_tokens("x" * 9, "gpt-4o") == 3  # ceil(9 / 4)
    assert tokens.count_tokens("abcd", "gpt-4o") == 1
    assert tokens.count_tokens("", "gpt-4o") == 0
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1  # once, not per count
    assert "pip install 'otel-ml[tokens]'" in messages[0]
    assert "estimated from text length" in messages[0]


def test_preload_builds_the_encoding_once_and_never_raises(
    monkeypatch: pytest.MonkeyPatch, no_tiktoken: None
) -> None:
    tokens.preload("gpt-4o")  # tiktoken missing: logged, not raised
    assert tokens._tiktoken_missing
    monkeypatch.delitem(sys.modules, "tiktoken")
    monkeypatch.setattr(tokens, "_tiktoken_missing", False)
    tokens.preload("gpt-4o")
    assert set(tokens._loaded) == {"o200k_base"}
    assert tokens.count_tokens("hello world", "gpt-4o") == 2
