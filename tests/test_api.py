"""The public surface: exports resolve, public names are documented, layering holds."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import audio
import realtime_client

PACKAGES = (realtime_client, audio)


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
        assert name in audio.__all__


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_audio_stands_alone() -> None:
    result = _run(
        """
        import sys, audio, audio.devices, audio.playback, audio.resample, audio.wav
        assert not [m for m in sys.modules if m.startswith("realtime_client")], "leak"
        print("ok")
        """
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
        import realtime_client, realtime_client.server, audio
        from realtime_client.errors import MissingExtraError
        from audio.errors import PortAudioMissingError
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
