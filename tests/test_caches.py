"""ttc's cache directory by platform: Linux's stays where it always was, macOS and Windows follow their
own conventions, and $TTC_CACHE_PATH overrides all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttc_cli import caches


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("TTC_CACHE_PATH", "XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "platform, env, expected",
    [
        ("linux", {}, ".cache/ttc"),
        ("linux", {"XDG_CACHE_HOME": "/xdg"}, "/xdg/ttc"),
        ("freebsd14", {}, ".cache/ttc"),
        ("darwin", {}, "Library/Caches/ttc"),
        ("darwin", {"XDG_CACHE_HOME": "/xdg"}, "Library/Caches/ttc"),  # as platformdirs: not on macOS
        ("win32", {"LOCALAPPDATA": "/appdata/local"}, "/appdata/local/ttc/Cache"),
        ("win32", {}, "AppData/Local/ttc/Cache"),
        ("darwin", {"TTC_CACHE_PATH": "/mine"}, "/mine"),
        ("win32", {"TTC_CACHE_PATH": "/mine"}, "/mine"),
    ],
)
def test_the_cache_dir_follows_the_platform(monkeypatch, home: Path, platform: str, env: dict, expected: str):
    monkeypatch.setattr(caches.sys, "platform", platform)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert caches.cache_dir() == home / expected  # an absolute `expected` replaces home


def test_caches_are_written_and_read_there(monkeypatch, home: Path):
    monkeypatch.setattr(caches.sys, "platform", "darwin")
    caches.write_cache("probe.json", {"a": 1})
    assert (home / "Library/Caches/ttc/probe.json").is_file() and caches.read_cache("probe.json") == {"a": 1}
