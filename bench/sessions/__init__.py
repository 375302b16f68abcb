"""Sessions-per-core benchmark: N full-duplex voice sessions in one pinned client process.

Run it with ``python -m bench.sessions`` (about 3 minutes; ``--quick`` for a smoke run of a
few seconds, ``--check`` to exit 1 when a target is missed, ``--profile N`` to see where the
client's time goes at N sessions).

Setup
-----
* The local server (``python -m realtime_client.server --port 0 --speed 1
  --audio-delta-ms 20 --responder script:…``) runs in a child process pinned to one core;
  this process pins itself to another (both restored/ended afterwards). With one usable
  core they share it, and the report says so.
* Every session is full duplex, like one PortAudio duplex stream: a simulated 48 kHz device
  (the audio library's :class:`~audio.VirtualMicrophone` ticking a
  :class:`~audio.VirtualSpeaker`) ticks every 20 ms on its own ideal schedule (phases spread
  evenly over the 20 ms so the sessions do not tick in lock step, as independent calls
  would not). On each tick it hands out one 20 ms capture block (960 float32 samples at
  48 kHz, resampled 48→24 kHz on the way out) and pulls one 20 ms block from its speaker:
  :class:`audio.Speaker`'s own code, a 24→48 kHz resampler feeding a 48 kHz
  :class:`~audio.PlaybackBuffer`, so output audio is played and accounted for on the
  device's sample clock.
* Turn detection is off (``turn_detection: null``) so that the input side never stops a
  response: the client streams audio continuously and asks for one response after
  another. The scripted responder answers each ``response.create`` with 5 s of speech-like
  audio (a cached WAV, so the server does no synthesis per turn) in 20 ms deltas paced in
  real time. After each ``response.done`` the client clears the input buffer (it would
  otherwise grow for the whole run) and creates the next response, so both directions
  carry 50 audio frames per second for the whole window, with a gap of one round trip
  between responses.
* Turn boundaries are spread like the device phases: session ``i`` of ``N`` asks for its
  first response ``i / N`` of a reply (5 s) after the start, as independent calls do not
  all change turn at once, and the window opens once every session is answering. A turn
  boundary is the costly moment of a typed client (a dozen validated events and two
  requests against a handful of dict lookups for the bare loop); ``--sync-turns`` puts
  every session's boundary in the same 20 ms, the worst case.
* Three clients drive the same load, interleaved level by level so machine noise hits
  them alike:

  - ``ours``: :func:`realtime_client.connect` with ``session.attach(device, speaker)``
    (capture blocks go through ``send_audio``; deltas go to the speaker) and a task that
    iterates the session (``async for event in session``) and creates the responses;
  - ``bare``: the reference, a minimal ``websockets`` + ``orjson`` + ``pybase64`` loop doing
    the same audio work (same resamplers and playback buffer);
  - ``sdk``: the official ``openai`` SDK, ``AsyncOpenAI(...).realtime.connect(...)``, with
    stdlib ``base64`` and ``conn.input_audio_buffer.append(audio=...)`` as a user would write
    it, and ``async for event in conn`` for the events (same resamplers and buffer).

What is measured
----------------
* Frame lateness: for each 20 ms tick, how long after its ideal time the device's
  coroutine actually ran (p50 / p99 / max over every tick of every session in the
  window). Ticks still pending when the window closes count with the lateness they have
  reached by then. The largest N whose p99 stays within ``--max-p99-ms`` (10 ms) is found
  by going up the levels; a client stops at its first failing level, and the full run
  then tries one level half-way between its last pass and first failure. A failing level
  is run once more and the better run counts, for every client alike: noise from the
  machine only ever adds lateness.
* Client-added latency, on the sample clock: (a) from the ideal capture time of a block's
  last sample (the tick) to the moment its ``input_audio_buffer.append`` has been handed to
  the socket (the transport's ``send`` returned); (b) from a delta's arrival at the socket
  (timestamped when ``websockets`` assembles the frame, inside ``data_received``) to its
  samples being in the PlaybackBuffer. The resamplers' filter delay (a fraction of a ms) is
  reported separately. Ours runs on a timing subclass of its WebSocket transport (the
  library's ``send``/``recv`` bodies plus the probe, no extra coroutine layer), which
  needs no change in the library.
* CPU: this process's CPU time per session-second of audio, and the server's CPU share (a
  saturated server delivers less audio, which the "audio in" column shows).

Absolute figures drift ±15–20 % on a shared 2-core machine: compare the clients of one
run, as ratios.

Modules: ``config`` (constants, :class:`RunConfig`, :class:`LevelResult`), ``devices``
(the simulated duplex device and the probe), ``clients`` (ours, bare, sdk), ``server``
(the server process), ``run`` (a level, the search, :func:`run_benchmark`), ``report``
(:func:`render`, the targets) and ``cli`` (:func:`main`).
"""

from __future__ import annotations

import os

# Why: one thread, so BLAS cannot spread over the other core (the server's).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .cli import main
from .config import DEVICE_RATE, FRAME_MS, QUICK, VARIANTS, LevelResult, RunConfig
from .config import _Run as _Run
from .report import _missed as _missed
from .report import render
from .run import _level as _level
from .run import run_benchmark

__all__ = [
    "DEVICE_RATE",
    "FRAME_MS",
    "QUICK",
    "VARIANTS",
    "LevelResult",
    "RunConfig",
    "main",
    "render",
    "run_benchmark",
]
