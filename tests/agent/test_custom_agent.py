"""Your own agent code: the clinic example under examples/clinic, run by a real worker over
real LiveKit. The builder named in spec.agent.entrypoint makes each call's Agent (its own
function tools, its greeting); the worker keeps providers, metrics and limits."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from livekit.agents import Agent

from tests.agent.conftest import AgentWorker, agent_finals, answer, calling, eventually
from tests.agent.test_tools_e2e import finals, said, warm_up
from voicefleet_agent.custom import build_agent
from voicefleet_agent.loadtest import Caller, utterance_pcm
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_models.agent_config import AgentConfig
from voicefleet_models.voice_agent import VoiceAgentSpec

CLINIC = Path(__file__).resolve().parents[2] / "examples" / "clinic"
SLOTS = "free on 2026-12-10: 09:00, 10:00"
ASKS = (
    "I would like to book an appointment please.",
    "I need an appointment.",
    "Can I book an appointment?",
)
ENTRYPOINT = "clinic.agent:build"


def with_clinic_on_path() -> dict[str, str]:
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(CLINIC), os.environ.get("PYTHONPATH")]))
    }


def clinic_config(name: str, entrypoint: str = ENTRYPOINT) -> dict[str, Any]:
    """The worker configuration the operator renders from examples/clinic/voiceagent.yaml."""
    manifest = yaml.safe_load((CLINIC / "voiceagent.yaml").read_text())
    spec = VoiceAgentSpec.model_validate(manifest["spec"])
    config = spec.agent_config(name, spec.regions[0]).model_dump(by_alias=True, mode="json")
    config["agent"]["entrypoint"] = entrypoint
    heard_reliably(config["pipeline"])
    return config


def heard_reliably(pipeline: dict[str, Any]) -> None:
    """The offline recognizer hears "appointment" as "a couple" or "a clue" about as often as
    right; the test's rule also fires on words it does hear ("I would like", "I need")."""
    pipeline["llm"][0]["script"]["rules"][0]["words"] += ["like", "need"]


async def greeted_then_offered_slots(caller: Caller) -> None:
    """The clinic's own code answers the call: its on_enter greeting, then its find_slots
    tool's result for a caller asking for an appointment."""
    await eventually(
        lambda: said(agent_finals(caller), "this is the clinic"),
        within=20,
        what=f"the clinic's greeting; heard {finals(caller)}",
    )
    await warm_up(caller)
    # The offline recognizer sometimes mishears a sentence ("book an appointment" as "go a
    # couple"): the caller says it again, as a person would, up to three times.
    for ask in ASKS:
        await answer(caller, utterance_pcm(ask))
        with contextlib.suppress(AssertionError):
            await eventually(lambda: said(agent_finals(caller), SLOTS), within=10, what=SLOTS)
            return
    raise AssertionError(f"no find_slots result; heard {finals(caller)}")


def test_the_builder_gets_the_spec_and_returns_the_agent() -> None:
    sys.path.insert(0, str(CLINIC))
    try:
        config = AgentConfig.model_validate(clinic_config("clinic-unit"))
        agent = build_agent(config, tools=[])
    finally:
        sys.path.remove(str(CLINIC))
    assert isinstance(agent, Agent)
    assert agent.instructions == config.instructions
    names = {tool.info.name for tool in agent.tools}  # type: ignore[union-attr]
    assert names == {"find_slots", "book"}
    # Without an entrypoint, the agent is the instructions and the declared tools.
    plain = build_agent(AgentConfig.model_validate({**clinic_config("plain"), "agent": {}}), [])
    assert type(plain) is Agent


async def test_the_clinic_agent_greets_and_answers_with_its_own_tool(
    livekit: LiveKitServer, worker_factory: Callable[..., AgentWorker]
) -> None:
    worker = worker_factory(clinic_config("vf-clinic"), **with_clinic_on_path())
    async with calling(livekit, "vf-clinic", "room-clinic") as caller:
        # The clinic's code runs in the worker's job process.
        await greeted_then_offered_slots(caller)
    # The worker still measures the call as its own.
    await eventually(
        lambda: worker.sample("voicefleet_agent_sessions_total") == 1, within=20, what="session"
    )
    assert worker.sample("voicefleet_agent_turns_total") >= 2


def test_an_entrypoint_that_cannot_load_stops_start_up_with_one_line(
    tmp_path: Path, livekit: LiveKitServer
) -> None:
    config = AgentConfig.model_validate(clinic_config("clinic-broken", "clinic.missing:build"))
    path = tmp_path / "config.json"
    path.write_text(config.model_dump_json(by_alias=True))
    env = {
        **os.environ,
        **with_clinic_on_path(),
        "VOICEFLEET_CONFIG": str(path),
        "LIVEKIT_URL": livekit.url,
        "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    result = subprocess.run([sys.executable, "-m", "voicefleet_agent", "start"], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "spec.agent.entrypoint clinic.missing:build: cannot import clinic.missing"
    )
