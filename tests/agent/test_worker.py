"""The agent worker against a real livekit-server: dispatch, conversation, metrics, traces,
interruptions, fallback, draining on SIGTERM and start-up errors."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
from livekit.agents.voice import RemoteSession
from livekit.protocol.agent_pb import agent_session as agent_pb

from tests.agent.conftest import (
    AgentWorker,
    agent_finals,
    answer,
    calling,
    eventually,
    http_get,
    pipeline_config,
)
from voicefleet_agent.loadtest import Caller, utterance_pcm
from voicefleet_agent.main import (
    FRAMEWORK_PRELOAD_MODULES,
    PRELOAD_LOCAL_MODELS_VARIABLE,
    PRELOAD_MODULES,
)
from voicefleet_agent.providers import OFFLINE_LABEL
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.otlp import OTLPReceiver, ReceivedSpan

OFFLINE = [{"provider": "offline"}]
STAGE_HISTOGRAMS = (
    "voicefleet_agent_voice_to_voice_seconds",
    "voicefleet_agent_end_of_turn_delay_seconds",
    "voicefleet_agent_stt_delay_seconds",
    "voicefleet_agent_llm_ttft_seconds",
    "voicefleet_agent_tts_ttfb_seconds",
    "voicefleet_agent_vad_inference_seconds",
)


@pytest.fixture(scope="module")
def speech() -> dict[str, bytes]:
    return {
        "question": utterance_pcm("What is the weather like today?"),
        "follow_up": utterance_pcm("Please tell me about the city."),
        "barge_in": utterance_pcm("Stop, stop, wait a moment please."),
    }


@pytest.fixture(scope="module")
def offline_worker(
    worker_factory: Callable[..., AgentWorker], otlp_receiver: OTLPReceiver
) -> AgentWorker:
    config = pipeline_config(
        "vf-offline",
        OFFLINE,
        OFFLINE,
        OFFLINE,
        region="test-1",
        observability={"otlpEndpoint": otlp_receiver.url},
    )
    return worker_factory(config)


def first_pause(audible: list[float], *, after: float, gap: float) -> float | None:
    """The last sound before the first silence longer than `gap` that starts after `after`."""
    sounds = [a for a in audible if a >= after - gap]
    for a, b in zip(sounds, [*sounds[1:], time.time()], strict=True):
        if b - a > gap:
            return a
    return None


def json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def spans_of(receiver: OTLPReceiver, agent: str) -> list[ReceivedSpan]:
    return [s for s in receiver.snapshot() if s.attributes.get("voicefleet.agent") == agent]


async def test_caller_talks_with_the_agent_dispatched_by_name(
    livekit: LiveKitServer,
    offline_worker: AgentWorker,
    otlp_receiver: OTLPReceiver,
    speech: dict[str, bytes],
) -> None:
    assert offline_worker.ready_after < 10, "worker took too long to become ready"
    async with calling(livekit, "vf-offline", "room-talk") as caller:
        ended, heard, _ = await answer(caller, speech["question"])
        assert 0 < heard - ended < 5
        agent = caller.agent_identity
        assert agent is not None
        state = caller.room.remote_participants[agent].attributes.get("lk.agent.state")
        assert state in {"listening", "thinking", "speaking"}
        transcripts = await eventually(
            lambda: [t for t in caller.transcripts if t.identity == agent and t.final],
            what="agent's final transcript",
        )
    user = [t for t in caller.transcripts if t.identity == caller.room.local_participant.identity]
    assert any(t.final and t.text.strip() for t in user), user
    assert any(not t.final and t.text.strip() for t in user), "no interim user transcript"
    assert transcripts[0].text.startswith(OFFLINE_LABEL)
    assert transcripts[0].chunks > 1, "agent transcript did not stream"

    for name in STAGE_HISTOGRAMS:
        assert offline_worker.sample(f"{name}_count") >= 1, name
    assert offline_worker.sample(
        "voicefleet_agent_stt_delay_seconds_count", provider="offline", model="pocketsphinx-en-us"
    )
    assert offline_worker.sample("voicefleet_agent_turns_total", region="test-1") >= 1
    assert offline_worker.sample("voicefleet_agent_llm_tokens_total", kind="completion") > 0
    assert offline_worker.sample("voicefleet_agent_tts_characters_total") > 0
    await eventually(
        lambda: offline_worker.sample("voicefleet_agent_sessions_total", outcome="completed"),
        what="session counted as completed",
    )

    spans = await eventually(
        lambda: (
            [s for s in spans_of(otlp_receiver, "vf-offline") if s.name == "tts_request"]
            and spans_of(otlp_receiver, "vf-offline")
        ),
        within=20,
        what="spans exported over OTLP",
    )
    by_name = {s.name: s for s in spans}
    for stage in ("stt", "llm_request", "tts_request", "agent_turn", "user_turn"):
        assert stage in by_name, sorted(by_name)
    trace_ids = {s.trace_id for s in spans}
    assert len(trace_ids) == 1, "a session must be one trace"
    assert by_name["stt"].attributes["gen_ai.provider.name"] == "offline"
    assert by_name["llm_request"].attributes["gen_ai.request.model"] == "offline-assistant"
    assert by_name["stt"].end_ns > by_name["stt"].start_ns
    assert all(s.attributes.get("voicefleet.region") == "test-1" for s in spans)
    assert by_name["stt"].resource["service.name"] == "voicefleet-agent"
    # The session's summary on the trace's root span, once the job has ended.
    (root,) = await eventually(
        lambda: [s for s in spans_of(otlp_receiver, "vf-offline") if s.name == "job_entrypoint"],
        within=20,
        what="the job's root span",
    )
    assert root.attributes["voicefleet.session.outcome"] == "completed"
    assert root.attributes["voicefleet.session.duration_seconds"] > 0
    assert root.attributes["voicefleet.session.turns"] >= 1
    spoken = [k for k in root.attributes if k.startswith("voicefleet.usage.tts_characters/")]
    assert spoken, root.attributes
    assert "what is the weather" not in offline_worker.log().lower()
    # Structured logs: every line the worker and its job processes wrote is a JSON object.
    assert [line for line in offline_worker.log().splitlines() if not json_object(line)] == []


async def remote_agent_info(
    caller: Caller, within: float
) -> agent_pb.SessionResponse.GetAgentInfoResponse:
    """What the framework's remote-session protocol tells a caller about the agent."""
    assert caller.agent_identity is not None
    remote = RemoteSession.from_room(caller.room, caller.agent_identity)
    await remote.start()
    try:
        await remote.wait_for_ready(timeout=within)
        return await remote.get_agent_info()
    finally:
        await remote.aclose()


async def test_callers_drive_the_session_remotely_only_where_allowed(
    livekit: LiveKitServer,
    offline_worker: AgentWorker,
    worker_factory: Callable[..., AgentWorker],
) -> None:
    # By default the agent answers no remote-session request: a caller cannot read its
    # instructions, send it text turns or switch its audio off.
    async with calling(livekit, "vf-offline", "room-remote-off") as caller:
        with pytest.raises(TimeoutError):
            await remote_agent_info(caller, within=3)
    # Allowed in the config, the same request is answered (so the one above can fail).
    fast = [{"provider": "simulated", "simulation": {"delaySeconds": 0.1}}]
    worker_factory(pipeline_config("vf-remote", fast, fast, fast, remoteSession=True))
    async with calling(livekit, "vf-remote", "room-remote-on") as caller:
        info = await remote_agent_info(caller, within=15)
    assert info.instructions == "You are a test agent."


def test_loadtest_command_shows_progress_then_the_report(
    livekit: LiveKitServer, offline_worker: AgentWorker
) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "voicefleet_operator.cli", "loadtest"),
            *("--url", livekit.url, "--api-key", livekit.api_key),
            *("--api-secret", livekit.api_secret, "--agent", "vf-offline"),
            *("--callers", "1", "--turns", "2", "--progress", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = result.stdout.splitlines()
    assert report[0] == "callers 1, turns 2/2", result.stdout
    assert re.fullmatch(r"voice-to-voice p50 \d+ ms, p95 \d+ ms, max \d+ ms", report[1])
    progress = [
        int(m.group(1))
        for line in result.stderr.splitlines()
        if (m := re.fullmatch(r"loadtest: (\d)/2 turns answered, 0 errors.*", line))
    ]
    assert progress, result.stderr
    assert progress == sorted(progress), progress
    summary = json.loads(result.stderr.splitlines()[-1])
    assert summary["turns_completed"] == 2
    assert 0 < summary["p50_seconds"] <= summary["p95_seconds"]


def test_job_processes_fork_from_the_one_forkserver_with_voicefleets_preload(
    offline_worker: AgentWorker,
) -> None:
    """The worker starts its forkserver itself, before the framework is imported (see the unit
    test of `start_forkserver`); the framework must then fork the warm job processes from that
    one rather than start a second."""
    assert offline_worker.process is not None
    assert offline_worker.process.popen is not None
    children = {
        child: " ".join(child.cmdline())
        for child in psutil.Process(offline_worker.process.popen.pid).children()
    }
    forkservers = [child for child, cmd in children.items() if "multiprocessing.forkserver" in cmd]
    assert len(forkservers) == 1, list(children.values())
    preload = re.search(r"main\(\d+, \d+, (\[.*?\])", children[forkservers[0]])
    assert preload is not None, children[forkservers[0]]
    assert ast.literal_eval(preload.group(1)) == [*PRELOAD_MODULES, *FRAMEWORK_PRELOAD_MODULES]
    # Started after the framework defaults were set, so it skips the unused local models.
    assert forkservers[0].environ().get(PRELOAD_LOCAL_MODELS_VARIABLE) == "0"
    # Besides it, the worker's only other child is multiprocessing's resource tracker.
    assert all("from multiprocessing." in cmd for cmd in children.values()), children
    assert forkservers[0].children(), "no warm job process"


async def test_speaking_over_the_agent_stops_its_audio(
    livekit: LiveKitServer, offline_worker: AgentWorker, speech: dict[str, bytes]
) -> None:
    before = offline_worker.sample("voicefleet_agent_interruptions_total")
    async with calling(livekit, "vf-offline", "room-barge-in") as caller:
        # The first reply plays in full (it also uses up the echo-cancellation warm-up).
        _, first_heard, first_last = await answer(caller, speech["question"])
        full_reply = first_last - first_heard
        ended = await caller.speak(speech["follow_up"])
        heard = await caller.wait_audible_after(ended, 20)
        await asyncio.sleep(1.0)
        barge_in = time.time()
        await caller.speak(speech["barge_in"])
        stopped = first_pause(caller.audible, after=barge_in, gap=0.4)
        assert stopped is not None, "agent audio never paused after the caller spoke over it"
        assert stopped - barge_in < 2.5
        assert stopped - heard < full_reply - 1.0
        await eventually(
            lambda: offline_worker.sample("voicefleet_agent_interruptions_total") > before,
            what="interruption counted",
        )


async def test_first_provider_failing_falls_back_and_is_counted(
    livekit: LiveKitServer, worker_factory: Callable[..., AgentWorker], speech: dict[str, bytes]
) -> None:
    fast = {"delaySeconds": 0.1}
    worker = worker_factory(
        pipeline_config(
            "vf-fallback",
            [{"provider": "simulated", "simulation": fast}],
            [{"provider": "simulated", "simulation": {"fail": True}}, {"provider": "offline"}],
            [
                {"provider": "simulated", "simulation": {"fail": True}},
                {"provider": "simulated", "simulation": fast},
            ],
        )
    )
    async with calling(livekit, "vf-fallback", "room-fallback") as caller:
        await answer(caller, speech["question"])
        agent_says = await eventually(
            lambda: [
                t.text
                for t in caller.transcripts
                if t.identity == caller.agent_identity and t.final
            ],
            what="agent transcript",
        )
    assert agent_says[0].startswith(OFFLINE_LABEL), "the fallback LLM did not answer"
    for stage in ("llm", "tts"):
        assert (
            worker.sample(
                "voicefleet_agent_provider_fallbacks_total", stage=stage, provider="simulated"
            )
            >= 1
        ), stage
        assert (
            worker.sample(
                "voicefleet_agent_provider_errors_total", stage=stage, provider="simulated"
            )
            >= 1
        ), stage
    assert worker.sample("voicefleet_agent_llm_ttft_seconds_count", provider="offline") >= 1
    assert worker.sample("voicefleet_agent_tts_ttfb_seconds_count", provider="simulated") >= 1
    assert "provider failed, switching" in worker.log()


async def test_speech_recognition_going_down_mid_call_hands_the_next_turn_to_the_fallback(
    livekit: LiveKitServer, worker_factory: Callable[..., AgentWorker], speech: dict[str, bytes]
) -> None:
    """The first recognizer answers one turn, then fails every request: the caller's next
    turn is recognized by the second one, answered, and the switch is counted."""
    fast = {"delaySeconds": 0.1}
    down_after_one = {**fast, "failAfterSegments": 1}
    simulated = [{"provider": "simulated", "simulation": fast}]
    worker = worker_factory(
        pipeline_config(
            "vf-stt-down",
            [{"provider": "simulated", "simulation": down_after_one}, {"provider": "offline"}],
            simulated,
            simulated,
        )
    )
    async with calling(livekit, "vf-stt-down", "room-stt-down") as caller:
        me = caller.room.local_participant.identity

        def heard_from_me() -> list[str]:
            return [t.text for t in caller.transcripts if t.identity == me and t.final]

        await answer(caller, speech["question"])
        assert await eventually(heard_from_me, what="first turn's transcript") == [
            "simulated utterance 1"
        ]
        replies = len(agent_finals(caller))
        await answer(caller, speech["follow_up"])
        second = await eventually(
            lambda: heard_from_me()[1:], what="second turn's transcript from the fallback"
        )
        # PocketSphinx's words, not the failed recognizer's script.
        assert "simulated" not in second[0], second
        assert second[0].strip(), second
        await eventually(lambda: len(agent_finals(caller)) > replies, what="second reply")
    labels = {"stage": "stt", "provider": "simulated"}
    assert worker.sample("voicefleet_agent_provider_fallbacks_total", **labels) >= 1
    assert worker.sample("voicefleet_agent_provider_errors_total", **labels) >= 1
    assert worker.sample("voicefleet_agent_stt_delay_seconds_count", provider="offline") >= 1


async def test_sigterm_lets_the_session_finish_then_exits(
    livekit: LiveKitServer, worker_factory: Callable[..., AgentWorker], speech: dict[str, bytes]
) -> None:
    fast = [{"provider": "simulated", "simulation": {"delaySeconds": 0.1}}]
    worker = worker_factory(pipeline_config("vf-drain", fast, fast, fast, drainTimeoutSeconds=60))
    assert worker.process is not None
    assert worker.process.popen is not None
    async with calling(livekit, "vf-drain", "room-drain") as caller:
        await answer(caller, speech["question"])
        os.kill(worker.process.popen.pid, signal.SIGTERM)
        await eventually(
            lambda: http_get(f"{worker.url}/readyz") == (503, "draining"), what="/readyz 503"
        )
        await eventually(
            lambda: worker.sample("voicefleet_agent_draining") == 1, what="draining gauge"
        )
        # The call goes on: the agent still answers.
        await answer(caller, speech["follow_up"])
        assert worker.process.running, "worker exited while a session was active"
    await eventually(lambda: not worker.process.running, within=20, what="worker exit")  # type: ignore[union-attr]
    assert worker.process.exit_code() == 0


def test_missing_key_stops_start_up_with_one_line(tmp_path: Path, livekit: LiveKitServer) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        '{"agentName": "a", "instructions": "", "pipeline": {"stt": [{"provider": "deepgram"}],'
        ' "llm": [{"provider": "offline"}], "tts": [{"provider": "offline"}]}}'
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        VOICEFLEET_CONFIG=str(config),
        LIVEKIT_URL=livekit.url,
        LIVEKIT_API_KEY=livekit.api_key,
        LIVEKIT_API_SECRET=livekit.api_secret,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "voicefleet_agent", "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "DEEPGRAM_API_KEY is not set: provider deepgram needs it "
        "(set it from a Secret with env valueFrom.secretKeyRef)"
    ]
    assert result.stdout == ""


async def test_call_limits_end_calls_with_a_goodbye_and_count_the_outcome(
    livekit: LiveKitServer,
    worker_factory: Callable[..., AgentWorker],
    speech: dict[str, bytes],
    tmp_path: Path,
) -> None:
    """A caller who stays silent is told goodbye and disconnected after the silence timeout;
    one who keeps talking is after the maximum call length. Each outcome is counted, and each
    call's log line has its cost at the prices the operator mounts."""
    goodbye = "Our time is up, goodbye."
    limits = {"maxDurationSeconds": 12, "silenceTimeoutSeconds": 5, "goodbye": goodbye}
    prices = tmp_path / "pricing.json"
    prices.write_text(json.dumps(PRICES))
    worker = worker_factory(
        pipeline_config("vf-limits", OFFLINE, OFFLINE, OFFLINE, call=limits),
        VOICEFLEET_PRICING_FILE=str(prices),
    )
    ended = "voicefleet_agent_sessions_total"

    dialled = time.monotonic()
    async with calling(livekit, "vf-limits", "room-silent") as silent:
        joined, disconnected = time.monotonic(), on_disconnect(silent)
        await eventually(lambda: disconnected, within=30, what="the room closed")
        # Nothing was said: after the silence timeout, the goodbye, then the room closed.
        assert 5 <= disconnected[0] - joined < 25
        assert any(goodbye in text for text in agent_finals(silent)), silent.transcripts
    await eventually(lambda: worker.sample(ended, outcome="silence_timeout") == 1, within=10)
    # Its conversation time: the session ran from the dispatch to the room closing, within a
    # second of what the caller saw.
    seconds = worker.sample(
        "voicefleet_agent_conversation_seconds_total", outcome="silence_timeout"
    )
    assert disconnected[0] - joined - 1 <= seconds <= disconnected[0] - dialled + 1, seconds
    durations = "voicefleet_agent_session_duration_seconds_count"
    assert worker.sample(durations, outcome="silence_timeout") == 1

    async with calling(livekit, "vf-limits", "room-talker") as talker:
        joined, disconnected = time.monotonic(), on_disconnect(talker)
        # Speaking every few seconds keeps the silence timer from expiring.
        while not disconnected and time.monotonic() - joined < 30:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(talker.speak(speech["question"]), 10)
            await asyncio.sleep(1)
        assert disconnected, "the call outlived its maximum length"
        assert 12 <= disconnected[0] - joined < 25
        assert any(goodbye in text for text in agent_finals(talker)), talker.transcripts
    await eventually(lambda: worker.sample(ended, outcome="max_duration") == 1, within=10)
    assert worker.sample(ended, outcome="completed") == 0
    assert worker.sample(durations, outcome="max_duration") == 1
    # One log line per call: its outcome, length, turns and usage; never what was said.
    (line,) = [e for e in log_events(worker) if e.get("message") == "session ended"
               and e.get("outcome") == "max_duration"]  # fmt: skip
    assert 12 <= line["duration_seconds"] < 25, line
    assert line["turns"] >= 1, line
    spoken = [v for k, v in line["usage"].items() if k.startswith("tts_characters/offline/")]
    assert sum(spoken) > 0, line
    assert "weather" not in json.dumps(line), line
    # Priced: the agent's minutes and its voice; the recognizer and the LLM are not, so they
    # are named rather than guessed.
    characters = line["usage"]["tts_characters/offline/en-us"]
    expected = line["duration_seconds"] / 60 * 0.6 + characters * 0.02
    assert line["cost"] == pytest.approx(expected, abs=1e-3), line
    assert line["currency"] == "EUR"
    assert {u.split("/")[0] for u in line["unpriced"]} == {"llm_tokens", "stt_audio_seconds"}


# Prices as the chart's values give them to the operator, for the offline TTS only.
PRICES = {
    "currency": "EUR",
    "agentMinute": 0.6,
    "tts": [{"provider": "offline", "model": "en-us", "per1MCharacters": 20000}],
}


def log_events(worker: AgentWorker) -> list[dict[str, Any]]:
    return [json.loads(line) for line in worker.log().splitlines() if json_object(line)]


def on_disconnect(caller: Caller) -> list[float]:
    """Filled with the monotonic time at which the caller's room disconnects it."""
    times: list[float] = []
    caller.room.on("disconnected", lambda *_: times.append(time.monotonic()))
    return times
