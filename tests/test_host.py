"""The AMX guard: probe in a child process on CPUs that advertise AMX, remember the verdict."""

from __future__ import annotations

import json

from ttc_cli.engine import host
from ttc_cli.models.files import default_model_path

AMX_CPU = (
    "model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu sse2 avx512f amx_bf16 amx_tile amx_int8\n"
)
PLAIN_CPU = "model name\t: AMD EPYC 7763\nflags\t\t: fpu sse2 avx2\n"


def test_amx_is_read_from_cpu_flags():
    assert host.cpu_advertises_amx(AMX_CPU)
    assert not host.cpu_advertises_amx(PLAIN_CPU)


def test_the_probe_runs_once_per_cpu_and_model_and_is_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("TTC_CACHE_PATH", str(tmp_path))
    monkeypatch.delenv("TTC_EXTRA_BUFTS", raising=False)
    monkeypatch.setattr(host, "_cpuinfo", lambda: AMX_CPU)
    calls = []
    monkeypatch.setattr(host, "probe_extra_bufts", lambda path: calls.append(path) or False)
    model = default_model_path()
    assert host.extra_bufts_allowed(model, "0.3.36") is False
    assert host.extra_bufts_allowed(model, "0.3.36") is False
    assert len(calls) == 1
    cached = json.loads((tmp_path / "host-probe.json").read_text())
    assert list(cached.values()) == [False] and "Xeon" in next(iter(cached))


def test_no_probe_without_amx_and_the_override_wins(monkeypatch):
    monkeypatch.setattr(host, "_cpuinfo", lambda: PLAIN_CPU)
    monkeypatch.setattr(
        host, "probe_extra_bufts", lambda path: (_ for _ in ()).throw(AssertionError("probed"))
    )
    monkeypatch.delenv("TTC_EXTRA_BUFTS", raising=False)
    assert host.extra_bufts_allowed(default_model_path(), "x") is True
    monkeypatch.setattr(host, "_cpuinfo", lambda: AMX_CPU)
    monkeypatch.setenv("TTC_EXTRA_BUFTS", "0")
    assert host.extra_bufts_allowed(default_model_path(), "x") is False


def test_the_real_probe_decodes_in_a_child_process():
    # On this host's CPU the child loads the real model and decodes; a crash there would read False.
    expected = not host.cpu_advertises_amx() or None
    verdict = host.probe_extra_bufts(default_model_path())
    if expected is True:
        assert verdict is True
    else:
        assert verdict in (True, False)


def test_a_child_that_dies_reads_as_unsafe(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(60))
    assert host.probe_extra_bufts(broken) is False
