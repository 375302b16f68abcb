"""``report.html`` opened in headless Chromium: it loads, its players load their WAVs, the
transcript is there and escaped; a rebuild writes one too and says what it lacks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from realtime_client.apps.replay import rebuild, replay

from ..conftest import CHROMIUM, chromium, speech_wav

pytest.importorskip("aiohttp", reason="the server extra is not installed")

from aiohttp import web

NASTY = 'Sure <script>document.title="pwned"</script> & <b>bold</b> "quoted"'

#: Opens report.html in an iframe (same origin), waits for every <audio> to load its
#: metadata (or fail), and posts what it found.
HARNESS = """<!doctype html><meta charset="utf-8"><body>
<iframe id="f" src="/report/report.html" style="width:1200px;height:900px"></iframe>
<script>
const f = document.getElementById('f');
f.onload = async () => {
  const d = f.contentDocument;
  const audios = [...d.querySelectorAll('audio')];
  await Promise.race([
    Promise.all(audios.map(a => a.readyState >= 1 ? null : new Promise(ok => {
      a.addEventListener('loadedmetadata', ok); a.addEventListener('error', ok);
    }))),
    new Promise(ok => setTimeout(ok, 10000)),
  ]);
  const img = d.getElementById('timeline');
  const result = {
    title: d.title,
    audios: audios.map(a => ({src: a.getAttribute('src'), ready: a.readyState,
                              duration: a.duration, error: a.error && a.error.code})),
    img: img ? {complete: img.complete, width: img.naturalWidth} : null,
    words: [...d.querySelectorAll('#transcript td.words')].map(td => td.textContent),
    scripts: d.querySelectorAll('script').length,
    bold: d.querySelectorAll('#transcript b').length,
    note: (d.querySelector('.note') || {}).textContent || null,
  };
  await fetch('/results', {method: 'POST', body: JSON.stringify(result)});
};
</script>"""

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


async def open_in_chromium(folder: Path, mic: Path, profile: Path) -> dict[str, Any]:
    """Serve ``folder`` on loopback, open the harness in Chromium, return what it posted."""
    results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def harness(_: web.Request) -> web.Response:
        return web.Response(text=HARNESS, content_type="text/html")

    async def post(request: web.Request) -> web.Response:
        await results.put(json.loads(await request.text()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", harness)
    app.router.add_post("/results", post)
    app.router.add_static("/report/", folder)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with chromium(f"http://127.0.0.1:{port}/", mic, profile):
            return await asyncio.wait_for(results.get(), 40)
    finally:
        await runner.cleanup()


async def test_report_plays_and_escapes_in_chromium(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": [{"transcript": "a<b>c", "reply": {"text": NASTY}}]}))
    wav = speech_wav(tmp_path / "in <1>.wav", 0.8, 24_000, lead_s=0.2, tail_s=0.1)
    out = tmp_path / "out"
    result = await replay(
        [wav], out, responder=f"script:{script}", speed=0, keep_audio=True, barge_in_at=[1.6]
    )
    assert (out / "report.html") == result.paths["report.html"]
    html = (out / "report.html").read_text()
    assert NASTY not in html and "&lt;script&gt;" in html  # escaped in the source
    assert "in%20%3C1%3E.wav" not in html  # the input lives elsewhere: not linked

    got = await open_in_chromium(out, wav, tmp_path / "profile")
    assert got["title"] == "realtime-replay report: in <1>.wav"  # not "pwned"
    assert got["scripts"] == 0 and got["bold"] == 0
    assert "a<b>c" in got["words"]
    assistant = [w for w in got["words"] if w.startswith("Sure")]
    assert assistant and assistant[0].startswith(NASTY[: len(assistant[0].split(" [")[0])])
    assert got["img"] == {"complete": True, "width": 1400}
    srcs = [a["src"] for a in got["audios"]]
    assert srcs[:2] == ["input.wav", "conversation.wav"]
    assert any(s.startswith("response-01-") for s in srcs[2:])
    for audio in got["audios"]:
        assert audio["error"] is None and audio["ready"] >= 1, audio
        assert audio["duration"] > 0.1, audio
    # The first answer was cut by the barge-in: its player stops at the cut.
    first = result.turns[1]
    assert first.role == "assistant" and first.truncated_at_ms is not None
    assert srcs[2].endswith(f"#t=0,{first.truncated_at_ms / 1000:.3f}")
    assert "cut at" in html

    rebuilt = rebuild(out / "events.jsonl", tmp_path / "rebuilt")
    page = rebuilt.paths["report.html"]
    assert page.parent == tmp_path / "rebuilt"
    got = await open_in_chromium(page.parent, wav, tmp_path / "profile2")
    assert got["img"] is None
    assert got["note"] is not None and "lacks wall-clock latencies" in got["note"]
    assert "a<b>c" in got["words"]
    assert got["audios"] and all(a["duration"] > 0.1 for a in got["audios"])
