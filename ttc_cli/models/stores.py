"""Models by name: where other tools keep GGUF files, and the names those tools give them.

`-m` takes a path, or a name looked up in this order: ttc's own aliases (`ttc models alias NAME PATH`,
kept in the app dir's `models.yaml`), ollama's store (a manifest per `model:tag` naming its GGUF blob;
`OLLAMA_MODELS` or ~/.ollama/models), the Hugging Face hub cache (`models--ORG--REPO/snapshots/REV/*.gguf`;
`HF_HUB_CACHE`, `HF_HOME`/hub or ~/.cache/huggingface/hub) and LM Studio's models folder
(~/.lmstudio/models, ~/.cache/lm-studio/models; `publisher/repo/*.gguf`). A repository with several GGUF
files is picked from by quantisation, `ORG/REPO:Q4_K_M`. Nothing here reads a model's contents: that is
`gguf_info.py`, and only `ttc models` needs it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ttc_cli.errors import UsageError

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_REGISTRY = "registry.ollama.ai"
# Quantisation names as they appear in GGUF file names (Q4_K_M, IQ3_XXS, Q8_0, F16, BF16, ...).
QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?![A-Za-z0-9])", re.IGNORECASE)
SPLIT_PART = re.compile(r"-(\d{5})-of-\d{5}\.gguf$")  # a model split across files loads from part 1


@dataclass(frozen=True)
class Found:
    name: str  # what -m accepts
    source: str  # alias | ollama | huggingface | lmstudio
    path: Path


def ollama_root() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models").expanduser()


def hf_root() -> Path:
    explicit = os.environ.get("HF_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def lmstudio_roots() -> list[Path]:
    return [Path.home() / ".lmstudio" / "models", Path.home() / ".cache" / "lm-studio" / "models"]


def aliases_file() -> Path:
    from ttc_cli.yaml_layers import user_path

    return user_path() / "models.yaml"


def aliases() -> dict[str, str]:
    import yaml

    path = aliases_file()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"cannot read model aliases {path}: {e}", "fix or delete that file") from None
    found = data.get("aliases") if isinstance(data, dict) else None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise UsageError(f"{path} must hold 'aliases:' mapping names to paths", "fix or delete that file")
    return {str(k): v for k, v in found.items()}


def set_alias(name: str, path: Path) -> None:
    import yaml

    if not name or any(c.isspace() for c in name):
        raise UsageError(f"'{name}' cannot be a model alias", "use a name without spaces, e.g. qwen-coder")
    table = aliases() | {name: str(path.resolve())}
    target = aliases_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump({"aliases": dict(sorted(table.items()))}), encoding="utf-8")


def quant_of(filename: str) -> str | None:
    found = QUANT.findall(Path(filename).stem)
    return found[-1].upper() if found else None


def _ggufs(folder: Path) -> list[Path]:
    """The loadable GGUF files under `folder` (a split model by its first part only)."""
    out = []
    for path in sorted(folder.rglob("*.gguf")):
        part = SPLIT_PART.search(path.name)
        if part is None or part.group(1) == "00001":
            out.append(path)
    return out


def _repo_files(repo: str, files: list[Path], source: str) -> Iterator[Found]:
    """A repository's GGUF files, each named REPO:QUANT (REPO:FILE-STEM when the name has no quant)."""
    for path in files:
        tag = quant_of(path.name) or path.stem
        yield Found(f"{repo}:{tag}", source, path)


def ollama_models() -> list[Found]:
    root = ollama_root()
    out = []
    for manifest in sorted((root / "manifests").glob("*/*/*/*")):
        if not manifest.is_file():
            continue
        host, namespace, model, tag = manifest.relative_to(root / "manifests").parts
        try:
            layers = json.loads(manifest.read_text()).get("layers", [])
            digest = next(la["digest"] for la in layers if la.get("mediaType") == OLLAMA_MODEL_LAYER)
        except (OSError, ValueError, StopIteration, TypeError, KeyError, AttributeError):
            continue  # not a model (an embedding projector, a broken pull): nothing to load
        blob = root / "blobs" / digest.replace(":", "-")
        if host == OLLAMA_REGISTRY:
            name = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
        else:
            name = f"{host}/{namespace}/{model}:{tag}"
        if blob.is_file():
            out.append(Found(name, "ollama", blob))
    return out


def hf_models() -> list[Found]:
    out: list[Found] = []
    for repo_dir in sorted(hf_root().glob("models--*--*")):
        repo = repo_dir.name.removeprefix("models--").replace("--", "/", 1)
        ref = repo_dir / "refs" / "main"
        try:
            snapshots = [repo_dir / "snapshots" / ref.read_text().strip()]
        except OSError:
            snapshots = sorted((repo_dir / "snapshots").glob("*"))
        files = [f for snap in snapshots for f in _ggufs(snap)]
        out += _repo_files(repo, files, "huggingface")
    return out


def lmstudio_models() -> list[Found]:
    out: list[Found] = []
    for root in lmstudio_roots():
        for repo_dir in sorted(root.glob("*/*")):
            if repo_dir.is_dir():
                out += _repo_files(f"{repo_dir.parent.name}/{repo_dir.name}", _ggufs(repo_dir), "lmstudio")
    return out


def all_models() -> list[Found]:
    """Every model the stores hold, in lookup order."""
    named = [Found(name, "alias", Path(path).expanduser()) for name, path in aliases().items()]
    return named + ollama_models() + hf_models() + lmstudio_models()


def find(name: str) -> Path:
    """The GGUF file `name` names (see the module docstring), or a UsageError naming close matches."""
    table = aliases()
    if name in table:
        return Path(table[name]).expanduser()
    models = all_models()
    wanted = name if ":" in name or "/" in name else f"{name}:latest"  # ollama's default tag
    exact = [m for m in models if m.name.lower() in (name.lower(), wanted.lower())]
    if exact:
        return exact[0].path
    repo, _, quant = name.partition(":")
    in_repo = [m for m in models if m.source in ("huggingface", "lmstudio") and m.name.split(":")[0] == repo]
    if quant:
        picked = [m for m in in_repo if m.path.stem.lower() == quant.lower()]
        if picked:
            return picked[0].path
    elif len({m.path for m in in_repo}) == 1:
        return in_repo[0].path
    if len(in_repo) > 1 and not quant:
        tags = ", ".join(sorted({m.name.split(":", 1)[1] for m in in_repo}))
        raise UsageError(
            f"{repo} has {len(in_repo)} GGUF files",
            f"pick one by quantisation: {repo}:QUANT with QUANT one of {tags}",
        )
    close = difflib.get_close_matches(name, [m.name for m in models], n=4, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(
        f"no model file or model named '{name}'",
        f"{hint}pass a path to a .gguf file, or see `ttc models` for the names found",
    )
