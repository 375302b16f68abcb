"""``realtime-replay``: play WAV files into a Realtime session, headless, and record it all.

Theory of operation
-------------------
The replay is a simulated full-duplex sound card. One *device clock* ticks every 20 ms;
on each tick the replay

* captures one 20 ms block (from the current input file at the file's own rate, or
  silence: a quiet room) and hands it to :meth:`Session.send_audio`, exactly as a
  microphone would (the session resamples to 24 kHz and appends);
* ticks the session's sink, an :class:`audio.VirtualSpeaker` (a real ``Speaker`` on a
  simulated device), which plays 20 ms of its playback buffer, so played-position
  accounting, barge-in (``speech_started`` → clear → truncate at the played position) and
  truncation are the session's real code paths.

With ``speed > 0`` ticks are paced on the wall clock by an :class:`audio.PacingClock`
(``speed=4``: four times real time);
the embedded server paces its output at the same speed. With ``speed=0`` the replay runs
as fast as it can, and the device clock stands still while it waits for the server, so
the server's think time does not show on the timeline. The device clock is the time axis
of everything written: the transcript's ``at_ms``, ``events.jsonl``'s ``at_ms`` and the
timeline picture.

Turn taking: with server VAD (the default) each file is streamed, followed by silence
until every committed user turn has been answered and its audio played (the simulated
user waits for the assistant), then the next file starts. With ``push_to_talk`` the
replay presses before each file (stop playback, truncate, cancel, clear the input), sends
the file only, and releases after it (commit + ``response.create``).

Barge-in: at each ``barge_in_at`` time (seconds on the device clock) the replay
interrupts the assistant the way a person does: if the next file is waiting, it starts
now; otherwise a 0.8 s voiced burst is mixed into the microphone signal. Under server VAD
the server hears it (``speech_started``), cancels the response, and the session clears
playback and truncates; under push-to-talk the replay presses, sends the burst and
releases.

Record and replay: every frame in both directions goes to ``events.jsonl`` in the common
cassette format (:mod:`realtime_client.recording`) with the replay's ``at_ms`` added, audio
payloads elided to their length unless ``keep_audio``. :func:`rebuild` feeds the
server records back through :class:`~realtime_client.protocol.RealtimeProtocol` (elided
audio replays as silence of the same length) and rebuilds the same transcript.

Modules: ``_driver`` (the simulated sound card and user), ``_records`` (the cassette
records), ``_report`` (transcript, failures and latency from the records),
``_results`` (:class:`Turn`, :class:`ReplayResult`), ``_outputs`` (the files written),
``_run`` (:func:`replay`, :func:`rebuild`) and ``_cli`` (``realtime-replay``).
"""

from __future__ import annotations

from ._cli import build_parser, main
from ._driver import BLOCK_MS
from ._report import _failures as _failures  # the tests check the failure rules directly
from ._results import ReplayError, ReplayResult, Turn
from ._run import rebuild, replay, replay_sync

__all__ = [
    "BLOCK_MS",
    "ReplayError",
    "ReplayResult",
    "Turn",
    "build_parser",
    "main",
    "rebuild",
    "replay",
    "replay_sync",
]
