"""The README's embedding example runs, unchanged, against the local server.

The block under "## Embedding it" is cut out of README.md and run as a script with
``OPENAI_BASE_URL`` pointing at a local server whose scripted model asks for the example's
``get_weather`` tool: the example must run the tool, send its output, and print the
answer that follows.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from realtime_client.server import LocalServer, ServerSession

from .conftest import clean_env, weather_script

README = Path(__file__).resolve().parent.parent / "README.md"


def embedding_example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"## Embedding it\n\n```python\n(.*?)```", text, re.S)
    assert match, "README has no python block under '## Embedding it'"
    return match.group(1)


def test_the_example_is_about_ten_lines() -> None:
    code = [line for line in embedding_example().splitlines() if line.strip()]
    assert len(code) <= 13, f"the embedding example grew to {len(code)} lines"


async def test_embedding_example_runs_its_tool_against_the_local_server(tmp_path: Path) -> None:
    script = weather_script(tmp_path, "Paris", "Eighteen degrees in Paris.")
    example = tmp_path / "embedding.py"
    example.write_text(embedding_example(), encoding="utf-8")
    sessions: list[ServerSession] = []
    async with LocalServer(responder=f"script:{script}", speed=0) as server:
        server.on_session = sessions.append
        env = clean_env(OPENAI_BASE_URL=server.url, OPENAI_API_KEY="sk-test-readme")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(example),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "assistant: Eighteen degrees in Paris."
    # The answer only comes after the tool's real output reached the server.
    outputs = [i for i in sessions[0].items.values() if i.get("type") == "function_call_output"]
    assert [json.loads(o["output"]) for o in outputs] == [{"city": "Paris", "temp_c": 18}]


def replay_example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        r"From Python, e\.g\. in a pytest regression test for a voice app:\n\n```python\n(.*?)```",
        text,
        re.S,
    )
    assert match, "README has no replay() pytest example"
    return match.group(1)


async def test_the_replay_pytest_example_passes_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(README.parent)  # the example's paths are the repository's
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    namespace: dict[str, object] = {}
    exec(compile(replay_example(), "README.md", "exec"), namespace)
    test = namespace["test_greeting"]
    assert callable(test)
    await test(tmp_path)
    assert (tmp_path / "transcript.md").exists()


# --- every CLI line of the README parses as written -------------------------------------


def _cli_lines() -> list[tuple[str, list[str]]]:
    """(program, arguments) of each README shell line that runs one of our programs."""
    import shlex

    text = README.read_text(encoding="utf-8")
    lines: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S):
        for raw in block.splitlines():
            words = shlex.split(raw, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words.pop(0)  # environment assignments
            if words[:3] == ["python", "-m", "realtime_client.server"]:
                words = ["realtime-server", *words[3:]]
            if words and words[0] in ("realtime-replay", "realtime-chat", "realtime-server"):
                lines.append((words[0], words[1:]))
    return lines


def test_every_cli_line_in_the_readme_parses() -> None:
    from realtime_client.apps import chat
    from realtime_client.apps.replay import _cli as replay_cli
    from realtime_client.server import __main__ as server_cli

    parsers = {
        "realtime-replay": replay_cli.build_parser,
        "realtime-chat": chat.build_parser,
        "realtime-server": server_cli.build_parser,
    }
    lines = _cli_lines()
    assert {program for program, _ in lines} == set(parsers)  # all three are documented
    refused = [(program, args) for program, args in lines if not _parses(parsers[program], args)]
    assert refused == [], f"README lines that do not parse: {refused}"


def _parses(parser: Any, args: list[str]) -> bool:
    try:
        parser().parse_args(args)
    except SystemExit:  # argparse's way of refusing a line
        return False
    return True
