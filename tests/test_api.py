"""The public surface: exports resolve, public names are documented, layering holds."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import realtime_client
import realtime_client.audio

PACKAGES = (realtime_client,)


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package.__name__)
        names.extend(
            info.name
            for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
            if "._" not in info.name and not info.name.endswith("__main__")
        )
    return names


@pytest.mark.parametrize("module_name", _modules())
def test_every_export_exists_and_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name!r}"
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"


def test_top_level_exports() -> None:
    for name in ("connect", "Session", "events", "errors", "RealtimeError", "memory_pair"):
        assert name in realtime_client.__all__
    for name in ("Resampler", "PlaybackBuffer", "Microphone", "Speaker", "read_wav", "EnergyVAD"):
        assert name in realtime_client.audio.__all__


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


REPO = Path(__file__).resolve().parent.parent


def test_audio_stands_alone() -> None:
    # The folder works as a package of its own (its imports are relative), and loading it
    # pulls in nothing else of realtime_client.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "import audio, audio.devices, audio.playback, audio.resample, audio.wav; "
            "assert audio.__file__.startswith(sys.argv[1]), audio.__file__; "
            "assert not [m for m in sys.modules if m.startswith('realtime_client')], 'leak'; "
            "print('ok')",
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_audio_ships_as_realtime_client_audio() -> None:
    assert Path(realtime_client.audio.__file__).resolve().parent == REPO / "audio"
    assert realtime_client.audio.__name__ == "realtime_client.audio"
    # Nothing in the package imports a top-level `audio` (a user's module of that name).
    offenders = []
    for path in sorted((REPO / "realtime_client").rglob("*.py")):
        if "audio" in path.relative_to(REPO / "realtime_client").parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [f"{path}:{node.lineno}" for n in names if n.split(".")[0] == "audio"]
    assert offenders == []


def test_a_users_own_audio_module_does_not_break_the_import(tmp_path: Path) -> None:
    # Voice apps often have an `audio.py` of their own next to the script.
    (tmp_path / "audio.py").write_text("MINE = True\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import audio, realtime_client, realtime_client.audio as ra; "
            "from realtime_client.audio import Resampler; "
            "assert audio.MINE and ra.__name__ == 'realtime_client.audio'; print('ok')",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_core_works_without_the_optional_extras() -> None:
    result = _run(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("aiohttp", "sounddevice", "aiortc"):
                    raise ImportError(f"blocked {name}")
                return None
        sys.meta_path.insert(0, Block())
        import asyncio
        import realtime_client, realtime_client.server, realtime_client.audio as audio
        from realtime_client.errors import MissingExtraError
        from realtime_client.audio.errors import PortAudioMissingError
        try:
            asyncio.run(realtime_client.server.LocalServer().start())
        except MissingExtraError as exc:
            assert "realtime-client[server]" in str(exc), exc
        else:
            raise AssertionError("no MissingExtraError")
        try:
            audio.list_devices()
        except PortAudioMissingError as exc:
            assert "realtime-client[audio]" in str(exc) and "libportaudio2" in str(exc), exc
        else:
            raise AssertionError("no PortAudioMissingError")
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
