"""Models by name: real store layouts (ollama, Hugging Face cache, LM Studio, aliases) built in a temp dir
around the real default GGUF, resolved through `-m` and listed by `ttc models`; no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_ttc

from ttc_cli.errors import UsageError
from ttc_cli.models.files import default_model_path, resolve_model_path
from ttc_cli.models.stores import all_models, find, quant_of, set_alias

GGUF = default_model_path()


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, OLLAMA_MODELS and HF_HOME inside tmp_path, each store holding links to the real GGUF."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)

    # ollama: manifests/<registry>/<namespace>/<model>/<tag> (JSON) naming blobs/sha256-<digest>
    digest = "sha256:" + "ab" * 32
    blobs = tmp_path / "ollama" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / digest.replace(":", "-")).symlink_to(GGUF)
    for model, tag in (("smollm2", "135m"), ("smollm2", "latest")):
        manifest = tmp_path / "ollama" / "manifests" / "registry.ollama.ai" / "library" / model / tag
        manifest.parent.mkdir(parents=True, exist_ok=True)
        layers = [
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "cd" * 32},
            {"mediaType": "application/vnd.ollama.image.model", "digest": digest},
        ]
        manifest.write_text(json.dumps({"schemaVersion": 2, "layers": layers}))

    # Hugging Face: hub/models--ORG--REPO/{refs/main, snapshots/<rev>/*.gguf -> ../../blobs/<hash>}
    repo = tmp_path / "hf" / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    for quant in ("Q4_1", "Q8_0"):
        (snap / f"smollm2-135m-instruct-{quant.lower()}.gguf").symlink_to(GGUF)
    single = tmp_path / "hf" / "hub" / "models--bartowski--Tiny-GGUF" / "snapshots" / "ffff"
    single.mkdir(parents=True)
    (single / "Tiny-Q4_K_M.gguf").symlink_to(GGUF)

    # LM Studio: ~/.lmstudio/models/<publisher>/<repo>/*.gguf, a split model by its first part
    lms = home / ".lmstudio" / "models" / "lmstudio-community" / "SmolLM2-GGUF"
    lms.mkdir(parents=True)
    (lms / "SmolLM2-135M-Instruct-Q4_1-00001-of-00002.gguf").symlink_to(GGUF)
    (lms / "SmolLM2-135M-Instruct-Q4_1-00002-of-00002.gguf").symlink_to(GGUF)
    return tmp_path


def test_each_store_names_its_models(stores: Path):
    names = {(m.name, m.source) for m in all_models()}
    assert {("smollm2:135m", "ollama"), ("smollm2:latest", "ollama")} <= names
    assert ("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q4_1", "huggingface") in names
    assert ("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q8_0", "huggingface") in names
    assert ("bartowski/Tiny-GGUF:Q4_K_M", "huggingface") in names
    assert ("lmstudio-community/SmolLM2-GGUF:Q4_1", "lmstudio") in names  # the second part is not listed
    assert len([m for m in all_models() if m.source == "lmstudio"]) == 1


def test_names_resolve_to_the_files_each_store_keeps(stores: Path):
    blob = stores / "ollama" / "blobs" / ("sha256-" + "ab" * 32)
    assert find("smollm2:135m") == blob and find("smollm2") == blob  # ollama's default tag is latest
    q8 = find("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:q8_0")
    assert q8.name == "smollm2-135m-instruct-q8_0.gguf" and q8.resolve() == GGUF.resolve()
    assert find("bartowski/Tiny-GGUF").name == "Tiny-Q4_K_M.gguf"  # one file: no quant needed
    assert find("lmstudio-community/SmolLM2-GGUF").name.endswith("-00001-of-00002.gguf")
    # -m goes through the same lookup, and the file it finds is checked as a GGUF
    assert resolve_model_path("smollm2:135m") == blob


def test_an_ambiguous_or_unknown_name_is_one_line_with_what_to_do(stores: Path):
    with pytest.raises(UsageError, match=r"has 2 GGUF files.*Q4_1, Q8_0"):
        find("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF")
    with pytest.raises(UsageError, match="did you mean smollm2:135m"):
        find("smolm2:135m")
    with pytest.raises(UsageError, match="model file not found"):
        resolve_model_path("missing.gguf")  # a path stays a path


def test_an_alias_comes_first_and_survives_a_bad_table(stores: Path, user_path: Path):
    set_alias("smollm2:135m", GGUF)  # shadows ollama's name of the same spelling
    assert find("smollm2:135m") == GGUF.resolve()
    (user_path / "models.yaml").write_text("aliases: [not, a, mapping]\n")
    with pytest.raises(UsageError, match="must hold 'aliases:'"):
        find("anything")


def test_quantisation_from_file_names():
    assert quant_of("qwen2.5-7b-instruct-q4_k_m.gguf") == "Q4_K_M"
    assert quant_of("Llama-3-8B.IQ3_XXS.gguf") == "IQ3_XXS"
    assert quant_of("model-bf16.gguf") == "BF16" and quant_of("model.gguf") is None


def test_ttc_models_lists_names_with_their_gguf_metadata_and_ask_loads_by_name(stores: Path, tmp_path: Path):
    env = {
        "HOME": str(stores / "home"),
        "OLLAMA_MODELS": str(stores / "ollama"),
        "HF_HOME": str(stores / "hf"),
    }
    out = run_ttc("models", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    smol = rows["smollm2:135m"]
    assert smol["source"] == "ollama" and smol["architecture"] == "llama"
    assert smol["quantisation"] == "Q4_1" and smol["context_length"] == 8192 and smol["chat_template"] is True
    assert 130e6 < smol["parameters"] < 140e6 and smol["bytes"] == GGUF.stat().st_size
    table = run_ttc("models", env=env)
    assert "smollm2:135m" in table.stdout and "135M" in table.stdout and "8,192" in table.stdout

    answer = run_ttc(
        "ask", "What is 2+2?", "-m", "smollm2:135m", "-s", "greedy", "--max-tokens", "8", env=env
    )
    assert answer.returncode == 0, answer.stderr
    unknown = run_ttc("ask", "What is 2+2?", "-m", "smolm2", env=env)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "did you mean" in unknown.stderr

    alias = run_ttc("models", "alias", "tiny", str(GGUF), env=env)
    assert alias.returncode == 0 and "tiny ->" in alias.stderr
    assert "tiny" in {r["name"] for r in json.loads(run_ttc("models", "--json", env=env).stdout)}
    bad = run_ttc("models", "alias", "x", str(tmp_path / "nope.gguf"), env=env)
    assert bad.returncode == 2 and "not found" in bad.stderr
