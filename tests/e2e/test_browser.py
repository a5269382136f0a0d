"""The frontend in real Chromium talking to a real agent worker through livekit-server.

The page is the production build, its token comes from the token function on Deno and its
microphone is Chromium's fake capture device playing espeak-ng speech from a WAV file.
"""

from __future__ import annotations

from pathlib import Path

from tests.agent.conftest import AgentWorker
from tests.e2e.browser import assert_conversation, run_call
from tests.e2e.conftest import TokenService
from tests.helpers import eventually
from voicefleet_devstack.process import port_open


def test_a_caller_talks_with_the_agent_in_chromium(
    frontend: str,
    agent_worker: AgentWorker,
    token_service: TokenService,
    speech: Path,
    artifacts: Path,
) -> None:
    token_service.start()
    report = run_call(frontend, artifacts, wav=speech)
    assert_conversation(report)
    # End call must end the session for the agent too, not only on the page.
    eventually(lambda: agent_worker.sample("voicefleet_agent_active_sessions") == 0, 20)
    assert agent_worker.sample("voicefleet_agent_sessions_total") >= 1


def test_token_service_down_shows_an_error_and_retry_recovers(
    frontend: str,
    agent_worker: AgentWorker,
    token_service: TokenService,
    speech: Path,
    artifacts: Path,
) -> None:
    assert not port_open(token_service.port), "the token service should be down"
    report = run_call(
        frontend,
        artifacts,
        wav=speech,
        mode="token-error",
        pause_after="token-error",
        on_pause=token_service.start,
    )
    error = report["error"]
    assert error["kind"] == "token-endpoint-unreachable", error
    assert token_service.url in error["message"], "the message should name the endpoint to check"
    steps = [step["name"] for step in report["steps"]]
    assert steps == ["loaded", "token-error", "connected", "agent-joined", "ended"], steps
