"""``report.html``: the replay to look at and listen to, beside the other outputs.

One page, no script and no network: the timeline picture, the transcript with timings,
an audio player for the input and for each assistant response (as heard: a truncated
response plays up to its cut, and the cut is marked), per-turn latency and cost. Media
are relative links to the files in the same folder, so the folder can be zipped and
shared. Every text (transcripts come from users and servers) is escaped.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ... import events as ev
from ...protocol import UsageTotals
from ...stats import PRICES, cost_usd
from ._results import ReplayResult, Turn

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;
color:#222}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
.meta{color:#555;margin:.2em 0}.ok{color:#1a7a2e}.bad{color:#b3261e}
.note{background:#fff6d6;border:1px solid #e6d38a;padding:.5em .8em;border-radius:4px}
img{max-width:100%;border:1px solid #ddd}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #e4e4e4;padding:.35em .5em;vertical-align:top;text-align:left}
th{background:#f4f4f8;font-weight:600}td.num{white-space:nowrap;font-variant-numeric:tabular-nums}
td.words{min-width:22em}
tr.user td.who{color:#2858c8}tr.assistant td.who{color:#b35a00}tr.tool td.who{color:#666}
.bar{height:6px;background:#f2c9a0;width:300px;margin-top:3px}
.bar span{display:block;height:6px;background:#e17814}
.cut{color:#b3261e;font-size:.9em}audio{width:300px;height:32px}
"""


def _ms(value: Any, *, unit: str = "ms") -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return f"{value:.0f} {unit}" if unit == "ms" else f"{value / 1000:.2f} s"


def _link(path: Path) -> str:
    """A relative, escaped link to a file in the report's folder."""
    return escape(quote(path.name), quote=True)


def _response_cost(usage: dict[str, Any] | None, prices: dict[str, float]) -> float | None:
    if not usage:
        return None
    totals = UsageTotals()
    totals.add(ev.Usage.model_validate(usage))
    return cost_usd(totals, prices)


def _when(turn: Turn) -> str:
    if turn.role == "user" and turn.start_ms is not None:
        end = f"{turn.end_ms / 1000:.2f}" if turn.end_ms is not None else "…"
        return f"{turn.start_ms / 1000:.2f}–{end} s of input"
    if turn.start_ms is not None:
        return f"{turn.start_ms / 1000:.2f} s"
    if turn.at_ms is not None:
        return f"{turn.at_ms / 1000:.2f} s"
    return "—"


def _player(turn: Turn, wav: Path | None, missing: str) -> str:
    """The assistant's audio as heard: up to the cut when truncated, the cut marked."""
    if wav is None:
        return f'<span class="meta">{escape(missing)}</span>' if turn.audio_ms else ""
    link = _link(wav)
    received = turn.audio_ms
    cut = turn.truncated_at_ms
    if cut is None or received <= 0 or cut >= received - 1:
        return (
            f'<audio controls preload="metadata" src="{link}" data-item="{escape(turn.item_id)}"'
            f' data-heard-ms="{received:.0f}"></audio>'
            f'<div class="meta">{received / 1000:.2f} s, heard in full</div>'
        )
    share = max(0.0, min(100.0, cut / received * 100))
    why = f" ({escape(turn.reason)})" if turn.reason else ""
    return (
        f'<audio controls preload="metadata" src="{link}#t=0,{cut / 1000:.3f}"'
        f' data-item="{escape(turn.item_id)}" data-heard-ms="{cut}"></audio>'
        f'<div class="bar" title="heard / received"><span style="width:{share:.1f}%"></span></div>'
        f'<div class="cut">✂ cut at {cut / 1000:.2f} s of {received / 1000:.2f} s received{why}:'
        f" the player stops where the listener stopped hearing it."
        f' <a href="{link}">Whole response as received</a></div>'
    )


def _rows(result: ReplayResult, prices: dict[str, float], missing_audio: str) -> list[str]:
    latency = {t.get("response_id"): t for t in result.report.get("turns") or []}
    rows: list[str] = []
    seen: set[str] = set()
    for turn in result.turns:
        lat = latency.get(turn.response_id) if turn.response_id else None
        first = lat is not None and turn.response_id not in seen
        if turn.response_id:
            seen.add(turn.response_id)
        numbers = ""
        if first and lat is not None:
            cost = _response_cost(lat.get("usage"), prices)
            usage = lat.get("usage") or {}
            numbers = (
                f"speech→audio {_ms(lat.get('speech_to_audio_ms'))}<br>"
                f"stop→first delta (device) {_ms(lat.get('speech_stop_to_first_delta_device_ms'))}"
                f"<br>create→delta {_ms(lat.get('create_to_delta_ms'))}"
                f"<br>response {_ms(lat.get('duration_ms'))}"
            )
            tokens = (
                f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out"
                if usage
                else "—"
            )
            money = "—" if cost is None else f"${cost:.5f}"
        else:
            tokens = money = ""
        status = ""
        if turn.role == "assistant" and turn.status and turn.status != "completed":
            why = f" ({turn.reason})" if turn.reason else ""
            status = f' <span class="cut">[{escape(turn.status + why)}]</span>'
        role = f"{turn.role}, {turn.phase}" if turn.phase else turn.role
        audio = (
            _player(turn, result.audio_files.get(turn.item_id), missing_audio)
            if turn.role == "assistant"
            else ""
        )
        rows.append(
            f'<tr class="{escape(turn.role)}" data-item="{escape(turn.item_id)}">'
            f'<td class="num">{escape(_when(turn))}</td><td class="who">{escape(role)}</td>'
            f'<td class="words">{escape(turn.text or "(no text)")}{status}</td>'
            f"<td>{audio}</td><td class=num>{numbers}</td>"
            f'<td class="num">{escape(tokens)}</td><td class="num">{escape(money)}</td></tr>'
        )
    return rows


def write_html(result: ReplayResult, out: Path, meta: dict[str, Any]) -> Path:
    """Write ``report.html`` into ``out`` (after the other outputs) and return its path.

    Links only to files the run wrote (``result.paths``, ``result.audio_files``), by
    relative name. A rebuild says on the page what it lacks.
    """
    report = result.report
    rebuilt = "rebuilt_from" in report
    paths = result.paths
    files = [Path(p).name for p in meta.get("inputs", [])]
    responder = meta.get("responder")
    server = f"embedded server, {responder} responder" if responder else meta.get("server")
    speed = meta.get("speed")
    pace = (
        "as fast as possible"
        if speed == 0
        else f"speed {speed:g}x"
        if isinstance(speed, (int, float))
        else "speed ?"
    )
    taking = "push-to-talk" if meta.get("push_to_talk") else "server VAD"
    verdict = (
        '<span class="ok">every turn answered</span>'
        if result.ok
        else f'<span class="bad">{len(result.failures)} failure(s)</span>'
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>realtime-replay report: {escape(', '.join(files) or 'recording')}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>realtime-replay report</h1>",
        f'<p class="meta">inputs: {escape(", ".join(files) or "—")}</p>',
        f'<p class="meta">{escape(str(server or "?"))}'
        f" · model {escape(str(meta.get('model', '?')))}"
        f" · {escape(pace)} · {escape(taking)} · {verdict}</p>",
    ]
    missing_audio = "no WAV: the recording elided audio (record with --keep-audio)"
    if rebuilt:
        lacks = [
            "wall-clock latencies (speech→audio, create→delta, response time)",
            "the timeline picture",
            "the input and conversation WAVs",
        ]
        if not result.audio_files:
            lacks.append("the response WAVs (the recording elided audio: use --keep-audio)")
        parts.append(
            f'<p class="note">Rebuilt from {escape(Path(str(report["rebuilt_from"])).name)}: '
            "a rebuild replays the recorded events only, so this page lacks "
            + escape("; ".join(lacks))
            + ". Times are the recording's clock.</p>"
        )
    if result.failures:
        parts.append("<h2>Failures</h2><ul>")
        parts += [f"<li>{escape(f)}</li>" for f in result.failures]
        parts.append("</ul>")
    parts.append("<h2>Timeline</h2>")
    if "timeline.png" in paths:
        parts.append(
            f'<img id="timeline" src="{_link(paths["timeline.png"])}" '
            'alt="timeline: input waveform and turns, assistant audio as played">'
        )
    else:
        why = next((n for n in result.notes if "timeline" in n), None)
        parts.append(
            f'<p class="note">No picture: {escape(why or "a rebuild has no audio tracks")}.</p>'
        )
    listen = []
    if "input.wav" in paths:
        listen.append(
            f'<p>Input, as the microphone path sent it: <audio controls preload="metadata" '
            f'id="input" src="{_link(paths["input.wav"])}"></audio></p>'
        )
    if "conversation.wav" in paths:
        listen.append(
            "<p>The whole conversation (left: input, right: assistant as played): "
            f'<audio controls preload="metadata" id="conversation" '
            f'src="{_link(paths["conversation.wav"])}"></audio></p>'
        )
    if listen:
        parts += ["<h2>Listen</h2>", *listen]
    prices = result.stats.prices if result.stats is not None else PRICES
    parts += [
        "<h2>Transcript</h2>",
        '<table id="transcript"><thead><tr><th>when (device clock)</th><th>who</th>'
        "<th>words</th><th>audio</th><th>latency</th><th>tokens</th><th>cost</th></tr>"
        "</thead><tbody>",
        *_rows(result, prices, missing_audio),
        "</tbody></table>",
    ]
    usage = report.get("usage") or {}
    totals = [f"{usage.get('responses', 0)} response(s)"]
    if usage:
        totals.append(
            f"{usage.get('input_tokens', 0)} input / {usage.get('output_tokens', 0)} output tokens"
        )
    if isinstance(report.get("cost_usd"), (int, float)):
        totals.append(f"about ${report['cost_usd']:.4f} at list prices")
    if isinstance(report.get("duration_ms"), (int, float)):
        totals.append(f"{report['duration_ms'] / 1000:.2f} s on the device clock")
    if isinstance(report.get("wall_s"), (int, float)):
        totals.append(f"{report['wall_s']:.2f} s wall time")
    parts.append(f'<h2>Totals</h2><p id="totals">{escape(" · ".join(totals))}</p>')
    others = [
        n for n in ("transcript.md", "transcript.json", "report.json", "events.jsonl") if n in paths
    ]
    if others:
        links = ", ".join(f'<a href="{_link(paths[n])}">{escape(n)}</a>' for n in others)
        parts.append(f'<p class="meta">The data: {links}.</p>')
    parts.append("</body></html>\n")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
