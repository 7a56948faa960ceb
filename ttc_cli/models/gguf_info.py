"""What a GGUF file holds, from its own metadata (the `gguf` package's reader): architecture,
quantisation, parameters, context length, chat template. Reading a file's vocabulary takes seconds, so
what `ttc models` shows is cached per file (path, size, modification time) beside the other caches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ttc_cli.caches import read_cache, write_cache

CACHE = "gguf-info.json"


def _key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def describe(path: Path) -> dict[str, Any]:
    """{architecture, quantisation, parameters, context_length, chat_template} of the GGUF at `path`; an
    unreadable file gives {"error": why}."""
    try:
        key = _key(path)
    except OSError as e:
        return {"error": e.strerror or str(e)}
    known = read_cache(CACHE)
    if key not in known:
        known[key] = _read(path)
        write_cache(CACHE, known)
    return dict(known[key])


def _read(path: Path) -> dict[str, Any]:
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as e:  # the reader raises ValueError, struct errors, OSError... on a bad file
        return {"error": f"not a readable GGUF file ({type(e).__name__})"}

    def field(name: str) -> Any:
        found = reader.fields.get(name)
        return found.contents() if found is not None else None

    arch = field("general.architecture")
    file_type = field("general.file_type")
    try:
        quant = gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_") if file_type is not None else None
    except ValueError:
        quant = None
    return {
        "architecture": arch,
        "quantisation": quant,
        "parameters": sum(int(t.n_elements) for t in reader.tensors),
        "context_length": field(f"{arch}.context_length") if arch else None,
        "chat_template": field("tokenizer.chat_template") is not None,
    }


def human_count(n: int | None) -> str:
    if not n:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.{1 if n < 10 * size else 0}f}{unit}"
    return str(n)
