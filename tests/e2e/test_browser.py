"""The frontend in real Chromium talking to a real agent worker through livekit-server.

The page is the production build, its token comes from the token function on Deno and its
microphone is Chromium's fake capture device playing espeak-ng speech from a WAV file.

With sign-in, the session is one supabase-js would have stored after a password sign-in, for a
token signed by a key whose key set the token function fetches and trusts. The sign-in request
itself (email and password to Supabase Auth) is not made here: no Supabase Auth server runs in
these tests.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.agent.conftest import AgentWorker
from tests.e2e.browser import assert_conversation, run_call, states
from tests.e2e.conftest import TokenService
from tests.e2e.supabase_project import SupabaseProject
from tests.helpers import eventually
from voicefleet_devstack.process import port_open

# Shorter than livekit-server's and the agent's patience for a lost participant.
OUTAGE_SECONDS = 5
# Longer than the LiveKit client's own reconnect attempts.
LONG_OUTAGE_SECONDS = 75


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


@pytest.mark.parametrize("mode", ["drop", "full-reconnect"])
def test_a_broken_connection_reconnects_and_the_same_call_goes_on(
    mode: str,
    frontend: str,
    agent_worker: AgentWorker,
    token_service: TokenService,
    speech: Path,
    artifacts: Path,
) -> None:
    """The browser offline for a few seconds (its signal connection drops), or the LiveKit
    client's full reconnect (a new peer connection, joining again as the same participant):
    the page says it is reconnecting, then the same agent answers again, in the same session."""
    token_service.start()
    sessions = agent_worker.sample("voicefleet_agent_sessions_total")
    report = run_call(frontend, artifacts, wav=speech, mode=mode, outage=OUTAGE_SECONDS)
    interruption = report["interruption"]
    assert interruption["outcome"] == "reconnected", report.get("error")
    assert interruption["agentAfter"] == interruption["agentBefore"], interruption
    assert "reconnecting" in states(report, "connectionStates")
    steps = [step["name"] for step in report["steps"]]
    assert steps[-3:] == ["reconnected", "answered-after-reconnecting", "ended"], steps
    # One call, one session: the agent kept it through the break.
    eventually(lambda: agent_worker.sample("voicefleet_agent_active_sessions") == 0, 30)
    eventually(lambda: agent_worker.sample("voicefleet_agent_sessions_total") > sessions, 30)
    assert agent_worker.sample("voicefleet_agent_sessions_total") == sessions + 1


def test_an_outage_longer_than_the_client_waits_ends_the_call_with_a_message(
    frontend: str,
    agent_worker: AgentWorker,
    token_service: TokenService,
    speech: Path,
    artifacts: Path,
) -> None:
    token_service.start()
    report = run_call(frontend, artifacts, wav=speech, mode="drop", outage=LONG_OUTAGE_SECONDS,
                      timeout=240)  # fmt: skip
    assert report["interruption"]["outcome"] == "ended", report["interruption"]
    error = report["error"]
    assert error["kind"] == "connection-lost", error
    assert "could not be restored" in error["message"], error
    # The agent's session ends too, instead of waiting for a caller who is not coming back.
    eventually(lambda: agent_worker.sample("voicefleet_agent_active_sessions") == 0, 90)


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


def test_a_signed_in_user_calls_with_their_access_token_while_guests_are_off(
    signin_frontend: str,
    agent_worker: AgentWorker,
    token_service: TokenService,
    supabase_project: SupabaseProject,
    speech: Path,
    artifacts: Path,
) -> None:
    token_service.start(guests=False, supabase_url=supabase_project.url)
    assert _status_without_sign_in(token_service.url) == 401, "guests should be off"
    user_id, email = str(uuid.uuid4()), "ada@example.com"
    session = supabase_project.session(user_id, email)
    stored = supabase_project.session_file(artifacts / "session.json", session)

    report = run_call(signin_frontend, artifacts, wav=speech, session=stored)

    assert report["signedInAs"] == {"text": f"Signed in as {email}", "userId": user_id}
    assert_conversation(report)
    token_calls = [r for r in report["requests"] if r["url"] == token_service.url]
    assert [(r["method"], r["authorization"]) for r in token_calls] == [
        ("POST", f"Bearer {session['access_token']}")
    ], token_calls
    # The token function verified the token against the project's key set and made the user's
    # id the caller's LiveKit identity; only LiveKit's agent participant shows as the agent.
    assert supabase_project.key_set_reads >= 1
    roles = sorted((p["role"], p["identity"]) for p in report["participants"])
    assert [role for role, _ in roles] == ["agent", "you"], report["participants"]
    assert ("you", user_id) in roles, report["participants"]
    # supabase-js used the stored session as it was: it never asked Supabase Auth for anything
    # until Sign out, which revokes the session there (answered 404 here; signed out anyway).
    project_calls = [(r["method"], r["url"]) for r in report["requests"]
                     if r["url"].startswith(supabase_project.url)]  # fmt: skip
    assert project_calls == [("POST", f"{supabase_project.url}/auth/v1/logout?scope=local")]
    assert report["steps"][-1]["name"] == "signed-out"
    eventually(lambda: agent_worker.sample("voicefleet_agent_active_sessions") == 0, 20)


def test_a_signed_out_page_says_to_sign_in_and_never_asks_for_a_token(
    signin_frontend: str,
    token_service: TokenService,
    supabase_project: SupabaseProject,
    artifacts: Path,
) -> None:
    token_service.start(guests=False, supabase_url=supabase_project.url)
    report = run_call(signin_frontend, artifacts, wav=None, mode="signed-out")
    assert report["signedOut"] == {
        "heading": "Sign in to call the agent",
        "notice": "Calls need a sign-in: use the email and password of your account.",
        "startButton": False,
        "guestButton": False,
    }
    assert report["requests"] == [], "a signed-out page must not request anything"


def _status_without_sign_in(url: str) -> int:
    request = urllib.request.Request(url, data=json.dumps({}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
