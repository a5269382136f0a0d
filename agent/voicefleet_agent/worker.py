"""The LiveKit worker: an AgentServer whose jobs run the configured voice pipeline.

The main process registers with LiveKit, reports load and serves health and metrics; each
session runs in its own job process, prepared ahead of time by `prewarm` (Silero and the
local models load there, so the first call is not slow).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livekit.agents import AgentServer, AgentSession, JobContext, JobProcess, llm, room_io
from livekit.agents.utils.hw import get_cpu_monitor
from livekit.agents.voice.events import CloseEvent, ConversationItemAddedEvent
from opentelemetry.sdk.trace import TracerProvider

from voicefleet_agent.call_limits import CallLimits
from voicefleet_agent.conversation_store import ConversationStore
from voicefleet_agent.custom import build_agent
from voicefleet_agent.floor import TRANSCRIPT_SECONDS, Floor, FloorSwitch
from voicefleet_agent.health import HealthServer
from voicefleet_agent.logs import install_redaction
from voicefleet_agent.main import CONFIG_VARIABLE, PRELOAD_MODULES
from voicefleet_agent.metrics import (
    Labels,
    SessionMetrics,
    record_worker_usage,
    set_worker_state,
)
from voicefleet_agent.pipeline import Pipeline, build_pipeline, load_vad
from voicefleet_agent.placement import mark_pod
from voicefleet_agent.process_tree import WorkerProcesses
from voicefleet_agent.recovery import LostJobWatch
from voicefleet_agent.resume import RESUME_LINE, restore_conversation, resumed
from voicefleet_agent.tools import ToolClient, build_tools
from voicefleet_agent.tracing import configure_tracing, record_stt_span
from voicefleet_models.agent_config import AgentConfig
from voicefleet_models.tool_spec import header_variables

logger = logging.getLogger("voicefleet.agent")

WORKER_PORT_VARIABLE = "VOICEFLEET_WORKER_HTTP_PORT"
DEFAULT_WORKER_PORT = 8081
# Load is max(CPU, sessions / sessionsPerWorker): 1.0 means full, so LiveKit stops dispatching.
FULL_LOAD = 1.0
# Job processes kept warm (each holds Silero and the local models): enough for a burst of two.
WARM_PROCESSES = 2
# Each sample walks the process table for the worker's children and reads their memory (for
# /metrics): once a second; the load is averaged over the last 3 s.
CPU_SAMPLE_SECONDS = 1.0
CPU_WINDOW = 3
STATE_KEY = "voicefleet"
# Caller audio reaches the VAD in 20 ms frames (the framework's default is 50 ms): the end of
# speech is seen up to 30 ms sooner for a little more per-frame work.
INPUT_FRAME_MS = 20
# Caller audio is decoded straight to the rate Silero and the local recognizers run at (the
# framework's default is 24 kHz), so no job process resamples it again in Python.
INPUT_SAMPLE_RATE = 16000


def read_config(env: Mapping[str, str]) -> AgentConfig:
    """The config the operator mounted at $VOICEFLEET_CONFIG (errors are the caller's to word)."""
    return AgentConfig.model_validate_json(Path(env[CONFIG_VARIABLE]).read_text())


@functools.cache
def process_config() -> AgentConfig:
    return read_config(os.environ)


def worker_load(cpu: float, active_sessions: int, sessions_per_worker: int) -> float:
    """The load reported to LiveKit: whichever of CPU and session slots is nearer to full.

    A worker without sessions always has room for one: its CPU then is start-up work (job
    processes loading models), and counting it would turn callers away from a fresh worker."""
    slots = active_sessions / sessions_per_worker
    return min(1.0, max(cpu, slots) if active_sessions else slots)


class CpuSampler:
    """Moving average of the CPU this worker's process tree uses, as a share of the CPUs it may
    use (the cgroup quota when there is one). Counting only its own processes keeps workers
    that share a node or a container from reading each other's load as their own. Each sample
    also goes to /metrics: the tree's CPU time and memory, as the sizing ramp reads them."""

    def __init__(self, labels: Labels) -> None:
        self._cpus = get_cpu_monitor().cpu_count()
        self._tree = WorkerProcesses()
        self._labels = labels
        self._samples: list[float] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Begin sampling. Only once the worker has started: the framework empties the
        metrics directory as it starts, and a metrics file this process had already opened
        would be deleted under it, its series gone from /metrics for good."""
        threading.Thread(target=self._run, name="voicefleet-cpu", daemon=True).start()

    def _record(self, counted: float) -> float:
        """Read the tree, export its memory and the CPU time beyond `counted` (what the
        counter holds); returns the CPU time read."""
        used = self._tree.cpu_seconds()
        record_worker_usage(
            self._labels, cpu_seconds_added=used - counted, memory_bytes=self._tree.memory_bytes()
        )
        return used

    def _run(self) -> None:
        last_at, last = time.monotonic(), self._record(0.0)
        counted = last
        while True:
            time.sleep(CPU_SAMPLE_SECONDS)
            now, used = time.monotonic(), self._record(counted)
            share = (used - last) / ((now - last_at) * self._cpus)
            last, last_at, counted = used, now, max(counted, used)
            with self._lock:
                self._samples = [*self._samples[-(CPU_WINDOW - 1) :], min(1.0, max(0.0, share))]

    def value(self) -> float:
        with self._lock:
            return sum(self._samples) / len(self._samples) if self._samples else 0.0


class WorkerLoad:
    """The worker's load_fnc; also refreshes the worker-level gauges it is called often enough."""

    def __init__(self, config: AgentConfig, labels: Labels) -> None:
        self._sessions_per_worker = config.sessions_per_worker
        self._labels = labels
        self.cpu = CpuSampler(labels)

    def __call__(self, server: AgentServer) -> float:
        active = len(server.active_jobs)
        set_worker_state(self._labels, active_sessions=active, draining=server.draining)
        return worker_load(self.cpu.value(), active, self._sessions_per_worker)


@dataclass
class ProcessState:
    """What a job process prepares before its session: built once, used by one session."""

    config: AgentConfig
    pipeline: Pipeline
    tracer: TracerProvider | None


def labels_of(config: AgentConfig) -> Labels:
    return Labels(agent=config.agent_name, region=config.region)


def prewarm(proc: JobProcess) -> None:
    """Runs in each job process before it is offered a job."""
    config = process_config()
    install_redaction(os.environ, header_variables(config.tools))
    pipeline = build_pipeline(config, load_vad(config.pipeline.vad), os.environ)
    tracer = configure_tracing(config, os.environ)
    proc.userdata[STATE_KEY] = ProcessState(config, pipeline, tracer)


async def entrypoint(ctx: JobContext) -> None:
    state: ProcessState = ctx.proc.userdata[STATE_KEY]
    pipeline = state.pipeline
    session: AgentSession[None] = AgentSession(
        vad=pipeline.vad,
        stt=pipeline.stt,
        llm=pipeline.llm,
        tts=pipeline.tts,
        turn_handling=pipeline.turn_handling,
        user_away_timeout=state.config.call.silence_timeout_seconds,
    )
    limits = CallLimits(ctx, session, state.config.call)
    session_metrics = SessionMetrics(
        session, pipeline, labels_of(state.config), limit_reached=lambda: limits.reached
    )
    session_metrics.watch_callers(ctx.room)
    tool_client = ToolClient()
    ctx.add_shutdown_callback(tool_client.aclose)
    tools = build_tools(
        state.config.tools,
        os.environ,
        tool_client,
        labels_of(state.config),
        trace_content=state.config.observability.trace_tool_content,
    )

    def on_item(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "user":
            record_stt_span(ev.item, pipeline)

    def on_close(ev: CloseEvent) -> None:
        # The caller left or the session failed: end the job so its process is freed.
        ctx.shutdown(reason=f"session closed: {ev.reason.value}")

    session.on("conversation_item_added", on_item)
    session.on("close", on_close)
    # A call whose agent was lost continues the conversation its predecessor saved.
    agent = build_agent(state.config, tools)
    conversation = ConversationStore(
        ctx.api,
        ctx.room,
        ctx.job.room.name,
        os.environ,
        labels_of(state.config),
        tool_content=state.config.observability.trace_tool_content,
        extra_secrets=header_variables(state.config.tools),
    )
    if resumed(ctx.job.metadata):
        await restore_conversation(agent, conversation)
    conversation.watch(session)
    # Several callers may share the room: the session listens to whoever has the floor, and
    # closes (as the framework does for one caller) only when the last one leaves.
    turn = state.config.pipeline.turn
    floor = Floor(
        grace=turn.min_endpointing_delay_seconds,
        settle=turn.max_endpointing_delay_seconds + TRANSCRIPT_SECONDS,
    )
    floor_switch = FloorSwitch(ctx.room, session, floor)
    floor_switch.attach()
    # Framework defaults publish both sides' transcripts on lk.transcription (interim and
    # final) and the agent's state attribute, each caller's under their own identity.
    # Unless the config allows it, no participant may drive the session remotely: the
    # framework's default would show any caller the instructions and let it mute the agent.
    await session.start(
        agent=agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(
            audio_input=room_io.AudioInputOptions(
                sample_rate=INPUT_SAMPLE_RATE, frame_size_ms=INPUT_FRAME_MS
            ),
            close_on_disconnect=True,
        ),
        session_host=state.config.remote_session,
    )
    await mark_pod(ctx.room, os.environ)
    floor_switch.start()
    limits.start()
    if resumed(ctx.job.metadata):
        session.say(RESUME_LINE)


def worker_port(env: Mapping[str, str]) -> int:
    """Port of the framework's own HTTP server (/ and /worker); 0 picks a free one."""
    return int(env.get(WORKER_PORT_VARIABLE, DEFAULT_WORKER_PORT))


def build_server(config: AgentConfig, env: Mapping[str, str]) -> AgentServer:
    labels = labels_of(config)
    load = WorkerLoad(config, labels)
    server = AgentServer(
        setup_fnc=prewarm,
        load_fnc=load,
        load_threshold=FULL_LOAD,
        # The framework reads 0 as "wait forever"; the config means "do not wait".
        drain_timeout=max(1, config.drain_timeout_seconds),
        num_idle_processes=min(config.sessions_per_worker, WARM_PROCESSES),
        port=worker_port(env),
        preload_modules=list(PRELOAD_MODULES),
    )
    server.rtc_session(entrypoint, agent_name=config.agent_name)
    health = HealthServer(
        port=config.observability.metrics_port,
        framework_port=lambda: server.worker_info.http_port,
        draining=lambda: server.draining,
    )
    tasks: set[asyncio.Task[Any]] = set()

    def on_started() -> None:
        install_redaction(os.environ)  # the CLI has set up its JSON handlers by now
        # The framework has emptied the metrics directory by now: the main process's own
        # series may be written.
        set_worker_state(labels, active_sessions=0, draining=False)
        load.cpu.start()
        watch = LostJobWatch(server, env, labels)
        for work in (health.start(), watch.run(config.agent_name)):
            task = asyncio.get_running_loop().create_task(work)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def on_registered(*_: object) -> None:
        health.registered = True
        logger.info("ready for jobs", extra={"agent_name": config.agent_name})

    server.on("worker_started", on_started)
    server.on("worker_registered", on_registered)
    return server
