"""Load reporting, metric definitions, log redaction and the keyless providers, in-process."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import subprocess
import sys
from typing import Any

import certifi
import numpy as np
import pytest
from livekit.agents import APIConnectionError, llm
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from voicefleet_agent import metrics
from voicefleet_agent.loadtest import parse_args, percentile, utterance_pcm
from voicefleet_agent.logs import REDACTED, RedactingFilter
from voicefleet_agent.main import (
    FRAMEWORK_PRELOAD_MODULES,
    LIVEKIT_VARIABLES,
    LOOP_BLOCK_WARN_VARIABLE,
    PRELOAD_LOCAL_MODELS_VARIABLE,
    default_environment,
)
from voicefleet_agent.pipeline import build_llm, load_vad
from voicefleet_agent.providers import (
    OFFLINE_LABEL,
    EspeakTTS,
    PocketSphinxSTT,
    ScriptedSTT,
    ToneTTS,
)
from voicefleet_agent.providers._local_tts import TONE_SECONDS_PER_CHARACTER
from voicefleet_agent.providers._speech import SAMPLE_RATE, EnergyGate, GateChange
from voicefleet_agent.worker import worker_load
from voicefleet_devstack.process import binary
from voicefleet_models.agent_config import AgentConfig, Simulation

AGENT_METRICS = {
    "voicefleet_agent_voice_to_voice_seconds": ("histogram", set()),
    "voicefleet_agent_end_of_turn_delay_seconds": ("histogram", set()),
    "voicefleet_agent_stt_delay_seconds": ("histogram", {"provider", "model"}),
    "voicefleet_agent_llm_ttft_seconds": ("histogram", {"provider", "model"}),
    "voicefleet_agent_tts_ttfb_seconds": ("histogram", {"provider", "model"}),
    "voicefleet_agent_vad_inference_seconds": ("histogram", set()),
    "voicefleet_agent_turns": ("counter", set()),
    "voicefleet_agent_interruptions": ("counter", set()),
    "voicefleet_agent_sessions": ("counter", {"outcome"}),
    "voicefleet_agent_session_duration_seconds": ("histogram", {"outcome"}),
    "voicefleet_agent_conversation_seconds": ("counter", {"outcome"}),
    "voicefleet_agent_provider_errors": ("counter", {"stage", "provider"}),
    "voicefleet_agent_provider_fallbacks": ("counter", {"stage", "provider"}),
    "voicefleet_agent_llm_tokens": ("counter", {"provider", "model", "kind"}),
    "voicefleet_agent_tts_characters": ("counter", {"provider", "model"}),
    "voicefleet_agent_tool_call_seconds": ("histogram", {"tool"}),
    "voicefleet_agent_tool_errors": ("counter", {"tool", "reason"}),
    "voicefleet_agent_stt_audio_seconds": ("counter", {"provider", "model"}),
    "voicefleet_agent_active_sessions": ("gauge", set()),
    "voicefleet_agent_draining": ("gauge", set()),
    "voicefleet_agent_worker_cpu_seconds": ("counter", set()),
    "voicefleet_agent_worker_memory_bytes": ("gauge", set()),
    "voicefleet_agent_conversation_carryover": ("counter", {"operation", "outcome"}),
}


def agent_metrics() -> list[MetricWrapperBase]:
    return [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]


def test_load_is_the_fuller_of_cpu_and_session_slots() -> None:
    assert worker_load(cpu=0.1, active_sessions=1, sessions_per_worker=8) == 0.125
    assert worker_load(cpu=0.3, active_sessions=1, sessions_per_worker=8) == 0.3
    # An idle worker is never full, even while its job processes load models.
    assert worker_load(cpu=1.0, active_sessions=0, sessions_per_worker=8) == 0.0
    assert worker_load(cpu=0.1, active_sessions=4, sessions_per_worker=8) == 0.5
    assert worker_load(cpu=0.9, active_sessions=4, sessions_per_worker=8) == 0.9
    # Full at sessionsPerWorker (the worker's load_threshold is 1.0), capped at 1.
    assert worker_load(cpu=0.2, active_sessions=7, sessions_per_worker=8) < 1.0
    assert worker_load(cpu=0.2, active_sessions=8, sessions_per_worker=8) == 1.0
    assert worker_load(cpu=0.2, active_sessions=9, sessions_per_worker=8) == 1.0


def test_metric_names_types_labels_and_buckets_match_the_reference() -> None:
    defined = {
        m._name: (m._type, set(m._labelnames) - {"agent", "region"}) for m in agent_metrics()
    }
    assert defined == AGENT_METRICS
    assert {"agent", "region"} <= set(metrics.TURNS._labelnames)
    assert metrics.LATENCY_BUCKETS == (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1, 1.5, 2, 3, 5, 10)
    for threshold in (0.3, 0.5, 0.8, 1, 1.5, 2, 3, 5):
        assert threshold in metrics.VOICE_TO_VOICE._upper_bounds


def test_exposition_passes_promtool(tmp_path: Any) -> None:
    registry = CollectorRegistry()
    for collector in agent_metrics():
        registry.register(collector)
    labels = metrics.Labels("support", "eu")
    metrics.VOICE_TO_VOICE.labels(**labels.common()).observe(0.7)
    metrics.SESSIONS.labels(**labels.common(), outcome="completed").inc()
    metrics.set_worker_state(labels, active_sessions=1, draining=False)
    metrics.record_worker_usage(labels, cpu_seconds_added=1.5, memory_bytes=300 * 2**20)
    result = subprocess.run(
        [binary("promtool"), "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_logs_carry_no_transcripts_or_keys_unless_asked() -> None:
    env = {"DEEPGRAM_API_KEY": "dg-secret-value-123"}
    record = logging.makeLogRecord(
        {
            "msg": "failed with key %s for text: hello there",
            "args": ("dg-secret-value-123",),
            "lk.pii.user_transcript": "my card number is 4242",
            "text_sent": "partial answer",
        }
    )
    assert RedactingFilter(env).filter(record)
    assert record.getMessage() == f"failed with key {REDACTED} for text: {REDACTED}"
    assert getattr(record, "lk.pii.user_transcript") == REDACTED
    assert record.text_sent == REDACTED
    kept = logging.makeLogRecord({"msg": "x", "lk.pii.user_transcript": "hello"})
    RedactingFilter({**env, "VOICEFLEET_LOG_TRANSCRIPTS": "true"}).filter(kept)
    assert getattr(kept, "lk.pii.user_transcript") == "hello"


def chat(*user_texts: str) -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    for text in user_texts:
        ctx.add_message(role="user", content=text)
    return ctx


async def collect_reply(model: llm.LLM[Any], ctx: llm.ChatContext) -> tuple[str, int]:
    chunks = 0
    text = ""
    async with model.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                chunks += 1
                text += chunk.delta.content
    return text, chunks


def llm_spec(provider: str, **simulation: Any) -> Any:
    cfg = {"provider": provider, "simulation": simulation}
    return AgentConfig.model_validate(
        {
            "agentName": "a",
            "instructions": "",
            "pipeline": {"stt": [{"provider": "offline"}], "llm": [cfg], "tts": [cfg]},
        }
    ).pipeline.llm[0]


async def test_offline_llm_is_labelled_streamed_and_deterministic() -> None:
    model = build_llm(llm_spec("offline"), {})
    first, chunks = await collect_reply(model, chat("What is the weather like today"))
    again, _ = await collect_reply(model, chat("What is the weather like today"))
    other, _ = await collect_reply(model, chat("Book a table for two"))
    assert first.startswith(OFFLINE_LABEL)
    assert chunks > 3
    assert first == again
    assert other != first


async def test_simulated_llm_waits_its_delay_or_fails() -> None:
    model = build_llm(llm_spec("simulated", delaySeconds=0.3), {})
    started = asyncio.get_running_loop().time()
    text, _ = await collect_reply(model, chat("hi"))
    assert asyncio.get_running_loop().time() - started >= 0.3
    assert text.startswith("Simulated reply 1.")
    failing = build_llm(llm_spec("simulated", fail=True), {})
    with pytest.raises(APIConnectionError):
        await collect_reply(failing, chat("hi"))


async def synthesize(model: Any, text: str) -> tuple[bytes, int]:
    pcm = b""
    rate = 0
    async with model.synthesize(text) as stream:
        async for audio in stream:
            pcm += bytes(audio.frame.data)
            rate = audio.frame.sample_rate
    return pcm, rate


async def test_simulated_tts_is_a_tone_as_long_as_the_text() -> None:
    model = ToneTTS(model="tone", simulation=Simulation(delay_seconds=0.2))
    started = asyncio.get_running_loop().time()
    pcm, rate = await synthesize(model, "x" * 50)
    assert asyncio.get_running_loop().time() - started >= 0.2
    seconds = len(pcm) / 2 / rate
    assert seconds == pytest.approx(50 * TONE_SECONDS_PER_CHARACTER, abs=0.05)
    assert np.abs(np.frombuffer(pcm, dtype=np.int16)).max() > 5000


async def test_offline_tts_speaks_and_offline_stt_hears_it() -> None:
    pcm, rate = await synthesize(EspeakTTS(voice="en-us"), "hello world")
    assert rate == 22050
    assert len(pcm) / 2 / rate > 0.5
    speech = utterance_pcm("hello hello")
    from livekit import rtc

    recognizer = PocketSphinxSTT(
        model="pocketsphinx-en-us",
        language="en-US",
        vad_model=load_vad(_vad_spec()),
    )
    event = await recognizer.recognize(rtc.AudioFrame(speech, 48000, 1, len(speech) // 2))
    assert event.alternatives
    assert event.alternatives[0].text.strip()


STT_FRAME = SAMPLE_RATE // 50  # 20 ms, as the session feeds the STT


def _frames(pcm: bytes) -> list[Any]:
    from livekit import rtc

    size = STT_FRAME * 2
    return [
        rtc.AudioFrame(pcm[i : i + size], SAMPLE_RATE, 1, len(pcm[i : i + size]) // 2)
        for i in range(0, len(pcm), size)
    ]


def _speech_16k(text: str) -> bytes:
    from voicefleet_agent.loadtest import resample

    return resample(utterance_pcm(text), 48000, SAMPLE_RATE)


def _silence(seconds: float) -> bytes:
    return bytes(int(seconds * SAMPLE_RATE) * 2)


async def test_simulated_stt_streams_one_segment_per_utterance_with_its_delay() -> None:
    from livekit.agents import stt

    speech = _speech_16k("Stop, stop, wait a moment please.")
    model = ScriptedSTT(
        model="simulated-stt",
        language="en-US",
        min_silence=0.55,
        simulation=Simulation(delay_seconds=0.3),
    )
    stream = model.stream()
    for frame in _frames(_silence(0.5) + speech + _silence(1.0) + speech + _silence(1.0)):
        stream.push_frame(frame)
    stream.end_input()
    events = [ev async for ev in stream]
    kinds = [ev.type for ev in events if ev.type != stt.SpeechEventType.INTERIM_TRANSCRIPT]
    segment = [
        stt.SpeechEventType.START_OF_SPEECH,
        stt.SpeechEventType.END_OF_SPEECH,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
        stt.SpeechEventType.RECOGNITION_USAGE,
    ]
    assert kinds == segment * 2
    finals = [ev for ev in events if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert [ev.alternatives[0].text for ev in finals] == [
        "simulated utterance 1",
        "simulated utterance 2",
    ]
    assert any(ev.type == stt.SpeechEventType.INTERIM_TRANSCRIPT for ev in events)
    usage = [ev.recognition_usage for ev in events if ev.recognition_usage is not None]
    speech_seconds = len(speech) / 2 / SAMPLE_RATE
    assert [u.audio_duration for u in usage] == pytest.approx([speech_seconds] * 2, abs=0.1)


def test_energy_gate_is_not_held_open_by_steady_noise() -> None:
    # Noise above the gate's absolute threshold (-45 dBFS) before, under and after the speech.
    noise = np.random.default_rng(0).normal(0, 300, SAMPLE_RATE * 4)
    speech = np.frombuffer(_speech_16k("Hello there, how are you?"), dtype=np.int16)
    mixed = np.concatenate([noise[:SAMPLE_RATE], speech + noise[: len(speech)], noise])
    gate = EnergyGate(min_silence=0.55)
    changes = [
        (i * 0.02, change)
        for i, frame in enumerate(_frames(mixed.clip(-32768, 32767).astype(np.int16).tobytes()))
        if (change := gate.push(frame)) is not None
    ]
    speech_end = 1.0 + len(speech) / SAMPLE_RATE
    assert [change for _, change in changes] == [GateChange.STARTED, GateChange.ENDED]
    assert changes[0][0] == pytest.approx(1.05, abs=0.1)
    assert changes[1][0] == pytest.approx(speech_end + 0.55, abs=0.1)


def agent_config(stt: str = "offline") -> dict[str, Any]:
    """A minimal config: offline providers, and `stt` for the speech recognizer."""
    offline = [{"provider": "offline"}]
    return {
        "agentName": "a",
        "instructions": "",
        "pipeline": {"stt": [{"provider": stt}], "llm": offline, "tts": offline},
    }


def _vad_spec() -> Any:
    return AgentConfig.model_validate(agent_config()).pipeline.vad


def test_framework_defaults_voicefleet_chooses_unless_set() -> None:
    env: dict[str, str] = {}
    default_environment(env)
    assert env == {LOOP_BLOCK_WARN_VARIABLE: "250", PRELOAD_LOCAL_MODELS_VARIABLE: "0"}
    env = {LOOP_BLOCK_WARN_VARIABLE: "100", PRELOAD_LOCAL_MODELS_VARIABLE: "1"}
    default_environment(env)
    assert env == {LOOP_BLOCK_WARN_VARIABLE: "100", PRELOAD_LOCAL_MODELS_VARIABLE: "1"}


def test_framework_warm_up_modules_the_forkserver_preloads_exist() -> None:
    # The forkserver skips a preload module it cannot import, silently: a framework upgrade
    # that renames one would only show as slower sessions.
    for module in FRAMEWORK_PRELOAD_MODULES:
        assert importlib.util.find_spec(module) is not None, module


def test_forkserver_starts_before_the_framework_is_imported() -> None:
    # What makes the two imports overlap: the worker's start-up checks and the forkserver's
    # start need nothing from livekit.agents, which the worker imports only after.
    config = agent_config(stt="deepgram")
    env = dict.fromkeys(["DEEPGRAM_API_KEY", *LIVEKIT_VARIABLES], "x")
    code = (
        "import json, sys, multiprocessing.forkserver as forkserver\n"
        "from voicefleet_models.agent_config import AgentConfig\n"
        "from voicefleet_agent.main import check_environment, start_forkserver\n"
        "config, env = (json.loads(arg) for arg in sys.argv[1:])\n"
        "check_environment(AgentConfig.model_validate(config), env)\n"
        "start_forkserver()\n"
        "print(forkserver._forkserver._forkserver_pid, 'livekit.agents' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config), json.dumps(env)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    pid, framework_imported = result.stdout.split()
    assert int(pid) > 0
    assert framework_imported == "False"


def test_forkserver_preload_sets_the_ca_bundle_fallback_job_processes_inherit() -> None:
    # As on a minimal image without a system trust store, where the framework would set it in
    # the main process only after the forkserver (and so the job processes) had started.
    code = (
        "from livekit.agents.utils import http_context\n"
        "http_context._has_system_trust_store = lambda: False\n"
        "import os, voicefleet_agent.preload\n"
        "print(os.environ.get('SSL_CERT_FILE'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == certifi.where()


def test_loadtest_refuses_a_progress_interval_that_is_not_positive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    connection = ["--url", "ws://lk", "--api-key", "k", "--api-secret", "s", "--agent", "a"]
    assert parse_args([*connection, "--progress", "2"]).progress_seconds == 2
    with pytest.raises(SystemExit) as exit_:
        parse_args([*connection, "--progress", "0"])
    assert exit_.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith("--progress must be a positive number of seconds")
    )


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile([0.3], 95) == 0.3
    assert percentile([], 50) is None


FOLD_SCRIPT = """
import json, os, sys
from voicefleet_agent import metrics

def serve_one_session(seconds):
    metrics.VOICE_TO_VOICE.labels(agent="a", region="r").observe(seconds)

children = []
for n in range(20):
    pid = os.fork()
    if pid == 0:
        serve_one_session(0.1 * (n % 7))
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
before_files = len(os.listdir(directory))
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
unfolded = generate_latest(registry).decode()
folded_files = metrics.fold_finished_processes(directory)
rendered = metrics.render_latest().decode()
after = sorted(os.listdir(directory))
serve_one_session(0.2)  # a live process still counts apart, and later folds add up
print(json.dumps({"before": before_files, "folded": folded_files,
                  "after": after, "unfolded": unfolded,
                  "rendered": rendered, "again": metrics.render_latest().decode()}))
"""


def test_finished_job_processes_fold_into_one_file_and_every_series_stays_exact(
    tmp_path: Any,
) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", FOLD_SCRIPT], env=env, capture_output=True,
                            text=True, timeout=60, check=True)  # fmt: skip
    out = json.loads(result.stdout)
    assert out["before"] == 20  # one histogram file per finished session
    assert out["folded"] == 20
    assert out["after"] == ["histogram_finished.db"]
    # Every series with its value; only the order of the families may differ.
    assert sorted(out["rendered"].splitlines()) == sorted(out["unfolded"].splitlines())
    assert (
        'voicefleet_agent_voice_to_voice_seconds_count{agent="a",region="r"} 20.0'
        in (out["rendered"])
    )
    assert (
        'voicefleet_agent_voice_to_voice_seconds_count{agent="a",region="r"} 21.0' in (out["again"])
    )


def test_a_metrics_file_being_created_does_not_fail_the_scrape(tmp_path: Any) -> None:
    """A job process that is starting has created its file but not sized it yet (here: the
    test's own process, alive); one that died at that moment leaves an empty file behind."""
    script = (
        "import os; from voicefleet_agent import metrics\n"
        "metrics.TURNS.labels(agent='a', region='r').inc()\n"
        "directory = os.environ['PROMETHEUS_MULTIPROC_DIR']\n"
        "open(os.path.join(directory, f'counter_{os.getppid()}.db'), 'ab').close()\n"
        "print(metrics.render_latest().decode())\n"
        "print(sorted(os.listdir(directory)))\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'voicefleet_agent_turns_total{agent="a",region="r"} 1.0' in result.stdout
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (tmp_path / f"histogram_{dead}.db").touch()
    again = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"histogram_{dead}.db" not in again.stdout  # folded away: it held nothing
