"""Drives frontend/e2e/call.mjs (playwright-core, Debian's Chromium) and checks what it saw."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from voicefleet_agent.providers.replies import OFFLINE_LABEL, offline_reply
from voicefleet_devstack.process import ComponentError, binary

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
CALL_SCRIPT = FRONTEND / "e2e" / "call.mjs"
SPEECH = "Hello agent. What can you do for me?"

Report = dict[str, Any]


def browser_tools() -> tuple[str, str]:
    """Paths of node and Chromium, after checking that playwright-core is installed."""
    if not (FRONTEND / "node_modules" / "playwright-core").is_dir():
        raise ComponentError("playwright-core is not installed: run `npm ci` in frontend/")
    return binary("node"), binary("chromium")


def speech_wav(path: Path, text: str = SPEECH) -> Path:
    """espeak-ng speech as a 48 kHz 16-bit mono WAV, the fake microphone's input.

    Chromium loops the file: 3 s of silence first lets the agent join before the caller
    speaks, 12 s after leave the whole answer unbroken before the question comes again.
    """
    raw = path.with_suffix(".raw.wav")
    subprocess.run([binary("espeak-ng"), "-v", "en-us", "-s", "150", "-w", str(raw), text],
                   check=True, capture_output=True, timeout=30)  # fmt: skip
    subprocess.run([binary("sox"), str(raw), "-r", "48000", "-c", "1", "-b", "16", str(path),
                    "pad", "3", "12"], check=True, capture_output=True, timeout=30)  # fmt: skip
    return path


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_call(
    url: str,
    artifacts: Path,
    *,
    wav: Path | None,
    mode: str = "call",
    session: Path | None = None,
    invitee_wav: Path | None = None,
    invitee_session: Path | None = None,
    outage: float | None = None,
    pause_after: str | None = None,
    on_pause: Callable[[], object] | None = None,
    step_timeout: float = 30,
    timeout: float = 150,
) -> Report:
    """Run call.mjs against `url`; screenshots and report.json land in `artifacts`.

    With `pause_after`, `on_pause` runs while the page waits after that step (e.g. with the
    call still connected). With `session` (a file from `SupabaseProject.session_file`), the
    page starts signed in and the call ends with Sign out. In "invite" mode a second caller
    with `invitee_wav` as microphone (and `invitee_session`, if given) joins from the invite
    link. Fails, naming the step, when the browser did not get through.
    """
    node, chromium = browser_tools()
    args = [node, str(CALL_SCRIPT), "--url", url, "--screenshots", str(artifacts), "--mode", mode]
    args += ["--timeout", str(step_timeout), "--chromium", chromium]
    if wav is not None:
        args += ["--wav", str(wav)]
    if session is not None:
        args += ["--session", str(session)]
    if invitee_wav is not None:
        args += ["--invitee-wav", str(invitee_wav)]
    if invitee_session is not None:
        args += ["--invitee-session", str(invitee_session)]
    if outage is not None:
        args += ["--outage", str(outage)]
    if pause_after is not None:
        args += ["--pause-after", pause_after]
    pipe = subprocess.PIPE
    proc = subprocess.Popen(
        args, stdin=pipe, stdout=pipe, stderr=pipe, text=True, start_new_session=True
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    progress: queue.Queue[str | None] = queue.Queue()
    stdout: list[str] = []
    threading.Thread(target=_pump, args=(proc.stderr, progress), daemon=True).start()
    reader = threading.Thread(target=lambda: stdout.extend(proc.stdout or []), daemon=True)
    reader.start()
    log: list[str] = []
    try:
        _follow(progress, log, time.monotonic() + timeout, pause_after, on_pause, proc.stdin)
        proc.wait(max(1.0, timeout / 10))
        reader.join(5)
    finally:
        _kill_group(proc)
    (artifacts / "progress.log").write_text("".join(log))
    return _report("".join(stdout), "".join(log), proc.returncode, artifacts)


def _follow(
    progress: queue.Queue[str | None],
    log: list[str],
    deadline: float,
    pause_after: str | None,
    on_pause: Callable[[], object] | None,
    stdin: IO[str],
) -> None:
    """Collect call.mjs's progress until it exits; resume its pause after `on_pause`."""
    while True:
        try:
            line = progress.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(
                f"the browser call did not finish in time; progress:\n{''.join(log)}"
            ) from None
        if line is None:
            return
        log.append(line)
        if pause_after is not None and line.startswith(f"call.mjs: paused after {pause_after};"):
            if on_pause is not None:
                on_pause()
            stdin.write("go on\n")
            stdin.flush()


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Stop call.mjs if it is still running. SIGTERM first: playwright then closes Chromium,
    which runs in a process group of its own and would outlive a SIGKILL of node."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            continue


def _report(stdout: str, progress: str, code: int | None, artifacts: Path) -> Report:
    try:
        report: Report = json.loads(stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"call.mjs exited with {code} without a report; output:\n{stdout}\n{progress}"
        ) from None
    (artifacts / "report.json").write_text(json.dumps(report, indent=2))
    if code != 0 or not report.get("ok"):
        failure = report.get("error", {}).get("failure", f"exit code {code}")
        raise AssertionError(
            f"browser: {failure}\nscreenshots: {artifacts}\nprogress:\n{progress}\n"
            f"states: connection {states(report, 'connectionStates')}, "
            f"agent {states(report, 'agentStates')}; transcript: {report.get('transcript')}"
        )
    return report


def states(report: Report, key: str) -> list[str]:
    return [s["state"] for s in report.get(key, [])]


def lines(report: Report, speaker: str) -> list[dict[str, Any]]:
    return [line for line in report["transcript"] if line["speaker"] == speaker]


def assert_conversation(report: Report) -> None:
    """The agent joined, heard the caller, answered aloud from what it heard, and End ended
    (followed only by Sign out on a page with sign-in)."""
    steps = [s["name"] for s in report["steps"]]
    assert steps[-1] == "ended" or steps[-2:] == ["ended", "signed-out"], steps
    assert "listening" in states(report, "agentStates"), report["agentStates"]
    assert "speaking" in states(report, "agentStates"), report["agentStates"]
    assert states(report, "connectionStates")[-1] == "disconnected", report["connectionStates"]
    audio = report["agentAudio"]
    assert audio["audibleSeconds"] >= 1.0, f"agent audio barely played: {audio}"
    transcript = report["transcript"]
    user = [line["text"] for line in lines(report, "user") if line["final"]]
    assert user, f"no final line of the caller: {transcript}"
    assert all(user), f"an empty line of the caller: {transcript}"
    first = next((i for i, line in enumerate(transcript) if line["speaker"] == "agent"), None)
    assert first is not None, f"no line of the agent: {transcript}"
    assert transcript[first]["final"], f"the agent's answer never completed: {transcript}"
    answer = transcript[first]["text"]
    # The offline model answers from the words it was given, so its first answer must be the
    # one to what the page showed the caller saying: STT, LLM, TTS and the page agree.
    asked = " ".join(line["text"] for line in transcript[:first] if line["speaker"] == "user")
    assert answer.startswith(OFFLINE_LABEL), answer
    assert answer == offline_reply(asked), f"agent answered {answer!r} to {asked!r}"


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
