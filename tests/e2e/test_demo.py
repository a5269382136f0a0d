"""`voicefleet demo` (what `make demo` runs) as a user meets it: it starts, a caller talks with
the agent from Chromium, the sample VoiceAgent counts the call, and Ctrl-C stops everything.

The demo uses fixed ports and ~/.cache/voicefleet/demo, so this test fails at once when a
demo is already running rather than fight over them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.browser import ROOT, assert_conversation, run_call
from tests.helpers import eventually
from voicefleet_devstack.cluster import REAL_NODE
from voicefleet_devstack.demo import AGENT, NAMESPACE, Ports
from voicefleet_devstack.node import why_unavailable
from voicefleet_devstack.process import CACHE, binary

STATE = CACHE / "demo"
START_TIMEOUT = 360.0  # it starts a real node and builds the frontend, on 2 cores
STOP_TIMEOUT = 90.0
READY_LINE = "Open http://127.0.0.1:5173/"
STOPPED_LINE = "demo stopped: every process it started has exited"

# pid → (start time in clock ticks, command line): the start time tells a reused pid apart.
ProcessTable = dict[int, tuple[str, str]]


class DemoRun:
    """`voicefleet demo` without a terminal, in its own process group, output kept."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.lines: list[str] = []
        # The offline pipeline: the conversation check knows what its model answers.
        keys = {"DEEPGRAM_API_KEY", "GOOGLE_API_KEY"}
        env = {k: v for k, v in os.environ.items() if k not in keys}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicefleet_devstack", "demo"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("w") as log:
            for line in self.proc.stdout:
                self.lines.append(line)
                log.write(line)
                log.flush()

    def output(self, last: int | None = None) -> str:
        return "".join(self.lines[-last:] if last else self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"voicefleet demo exited with {self.proc.returncode} before printing "
                    f"{text!r}; log: {self.log}\n{self.output(30)}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"voicefleet demo did not print {text!r} within {timeout:.0f}s; "
                    f"log: {self.log}\n{self.output(30)}"
                )
            time.sleep(0.2)

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it to the foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"voicefleet demo did not exit within {STOP_TIMEOUT:.0f}s of Ctrl-C; "
                f"log: {self.log}\n{self.output(30)}"
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def processes() -> dict[int, tuple[int, str, str]]:
    """Every live process: pid → (parent pid, start time, command line). A zombie has exited
    and only waits to be reaped: an orphan's reaper is init, which may take its time."""
    table: dict[int, tuple[int, str, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, ..., starttime (22nd).
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X"):
            table[int(entry.name)] = (int(fields[1]), fields[19], cmdline.strip())
    return table


def descendants(root: int) -> ProcessTable:
    table = processes()
    found: ProcessTable = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started, cmdline) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = (started, cmdline)
                frontier.append(pid)
    return found


def still_running(seen: ProcessTable) -> ProcessTable:
    table = processes()
    return {pid: seen[pid] for pid in seen if pid in table and table[pid][1] == seen[pid][0]}


def using_state() -> ProcessTable:
    """Processes whose command line or environment points into the demo's state folder."""
    marker = str(STATE).encode()
    found: ProcessTable = {}
    for pid, (_, started, cmdline) in processes().items():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            environ = b""
        if pid != os.getpid() and (marker in cmdline.encode() or marker in environ):
            found[pid] = (started, cmdline)
    return found


def kubectl_json(*args: str) -> dict[str, Any]:
    """kubectl's JSON output against the demo's cluster, {} while the API server does not
    answer."""
    result = subprocess.run(
        [binary("kubectl"), *args, "-n", NAMESPACE, "-o", "json"],
        env={**os.environ, "KUBECONFIG": str(STATE / "cluster" / "kubeconfig")},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    out: dict[str, Any] = json.loads(result.stdout) if result.stdout else {}
    return out


def agent_status() -> dict[str, Any]:
    """The sample VoiceAgent's status, {} while the API server does not answer."""
    status: dict[str, Any] = kubectl_json("get", "va", AGENT).get("status", {})
    return status


def running_workers() -> list[str]:
    """Worker pods whose container runs on the real node and passes its readiness probe."""
    pods = kubectl_json("get", "pods", "-l", f"voicefleet.io/agent={AGENT}").get("items", [])
    return [
        pod["metadata"]["name"]
        for pod in pods
        if pod["spec"].get("nodeName") == REAL_NODE
        and all(c.get("ready") and "running" in c["state"]
                for c in pod["status"].get("containerStatuses", [{}]))
    ]  # fmt: skip


def workers_if(count: int) -> list[str] | None:
    workers = running_workers()
    return workers if len(workers) == count else None


def scraped_workers() -> set[str]:
    """Worker pods Prometheus found in the namespace and scrapes successfully."""
    url = f"http://127.0.0.1:{Ports().prometheus}/api/v1/query?query=up%7Bjob%3D%22voicefleet-agent%22%7D%3D%3D1"
    with urllib.request.urlopen(url, timeout=5) as response:
        results = json.load(response)["data"]["result"]
    return {result["metric"].get("pod", "") for result in results}


def desired(status: dict[str, Any]) -> int:
    regions = status.get("regions") or [{}]
    return int(regions[0].get("desiredReplicas", 0))


def status_showing_a_call(desired_before: int, timeout: float) -> dict[str, Any]:
    """The status once it counts the call: a session, and more desired workers than before."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = agent_status()
        if status.get("activeSessions", 0) >= 1 and desired(status) > desired_before:
            return status
        time.sleep(0.5)
    raise AssertionError(
        f"VoiceAgent {AGENT} did not count the connected call within {timeout:.0f}s "
        f"(want activeSessions >= 1 and desiredReplicas > {desired_before}); "
        f"last status: activeSessions={status.get('activeSessions')}, "
        f"regions={status.get('regions')}, conditions={status.get('conditions')}"
    )


def test_demo_serves_a_browser_call_and_stops_cleanly(speech: Path, artifacts: Path) -> None:
    """On this machine a real node can run: the demo's workers are real pods, and a call
    brings a second one (the warm worker for the next caller)."""
    busy = Ports().busy()
    assert not busy, f"demo ports already in use: {busy}; is a demo running? stop it and retry"
    no_real_node = why_unavailable()
    assert no_real_node is None, f"this suite runs a real node: {no_real_node}"
    demo = DemoRun(artifacts / "demo.log")
    started: ProcessTable = {}
    try:
        demo.wait_for(READY_LINE, START_TIMEOUT)
        assert "NOT HEALTHY" not in demo.output(), demo.output()
        assert "no real node" not in demo.output(), demo.output()
        (first,) = eventually(running_workers, 60)
        eventually(lambda: scraped_workers() == {first}, 30)
        before = desired(eventually(agent_status, 30))
        during: dict[str, Any] = {}

        def while_connected() -> None:
            started.update(descendants(demo.proc.pid))
            during.update(status_showing_a_call(before, 30))
            # The warm worker for the next caller: a second real pod, ready for jobs.
            workers = eventually(lambda: workers_if(2), 90)
            during["workers"] = workers
            assert first in workers, workers

        report = run_call(
            f"http://127.0.0.1:{Ports().frontend}/",
            artifacts,
            wav=speech,
            pause_after="agent-answered",
            on_pause=while_connected,
        )
        assert_conversation(report)
        assert during.get("activeSessions", 0) >= 1, during
        assert len(during.get("workers", [])) == 2, during
        started.update(descendants(demo.proc.pid))
        observed = {"desiredBefore": before, "statusDuringCall": during, "started": started}
        (artifacts / "demo-observed.json").write_text(json.dumps(observed, indent=2))

        assert demo.interrupt() == 0, demo.output(30)
        assert STOPPED_LINE in demo.output(), demo.output(30)
        left = {**still_running(started), **using_state()}
        assert not left, f"processes the demo started are still running: {left}"
        assert not Ports().busy(), f"demo ports still listening: {Ports().busy()}"
    finally:
        demo.kill()
        for pid in still_running(started):
            os.kill(pid, signal.SIGKILL)
