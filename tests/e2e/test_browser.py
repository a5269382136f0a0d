"""The frontend in real Chromium talking to a real agent worker through livekit-server.

The page is the production build, its token comes from the token function on Deno and its
microphone is Chromium's fake capture device playing espeak-ng speech from a WAV file.

With sign-in, the session is one supabase-js would have stored after a password sign-in, for a
token signed by a key whose key set the token function fetches and trusts. The sign-in request
itself (email and password to Supabase Auth) is not made here: no Supabase Auth server runs in
these tests.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from livekit import api

from tests.agent.conftest import AgentWorker
from tests.e2e.browser import Report, assert_conversation, run_call, speech_wav, states
from tests.e2e.conftest import TokenService
from tests.e2e.supabase_project import SupabaseProject
from tests.helpers import eventually
from voicefleet_agent.providers.replies import offline_reply
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import port_open
from voicefleet_operator.livekit_load import Collector, Endpoint

# Shorter than livekit-server's and the agent's patience for a lost participant.
OUTAGE_SECONDS = 5
# Longer than the LiveKit client's own reconnect attempts.
LONG_OUTAGE_SECONDS = 75
# The invited caller says something else than the first, so each answer shows whose turn it was.
INVITEE_SPEECH = "Good evening. Please tell me a story about the sea."


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


def test_an_invited_caller_joins_the_call_and_both_pages_show_who_speaks(
    signin_frontend: str,
    agent_worker: AgentWorker,
    inviting_token_service: TokenService,
    supabase_project: SupabaseProject,
    livekit: LiveKitServer,
    agent_name: str,
    speech: Path,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    """Caller A talks with the agent, mutes and copies an invite link from the page; caller B,
    in a browser of their own with their own microphone, opens it and joins the same call. Both
    pages list both callers and one agent, A's page marks B and then the agent speaking, and
    the agent's answer to B follows B's line on both pages. One call is one session, however
    many people are in it."""
    inviter, invitee = str(uuid.uuid4()), str(uuid.uuid4())
    files = {
        user: supabase_project.session_file(
            artifacts / f"session-{user}.json",
            supabase_project.session(user, f"{user}@example.com"),
        )
        for user in (inviter, invitee)
    }
    completed = agent_worker.sample("voicefleet_agent_sessions_total")
    during: list[tuple[float, int]] = []

    def count_sessions() -> None:
        """While both callers are in the call: one active session, one session of demand."""
        eventually(lambda: _demand(livekit, agent_name) == 1, 15)
        during.append(
            (agent_worker.sample("voicefleet_agent_active_sessions"), _demand(livekit, agent_name))
        )

    report = run_call(
        signin_frontend, artifacts, wav=speech, mode="invite", session=files[inviter],
        invitee_wav=speech_wav(tmp_path / "invitee.wav", INVITEE_SPEECH),
        invitee_session=files[invitee], pause_after="invitee-answer-shown",
        on_pause=count_sessions,
    )  # fmt: skip
    b = report["invitee"]

    # A's own turn first, then the invite, read from the page's link box and its copy.
    assert_conversation(report)
    link = report["invite"]["link"]
    assert link.startswith(f"{signin_frontend}?invite="), link
    assert report["invite"]["copied"] == link
    assert b["startButton"] == "Join the call", b
    assert b["invitedNotice"] == (
        "You were invited: this page joins someone's call, with their agent already in it."
    )
    token_url = inviting_token_service.url
    assert _token_calls(report, token_url) == [["agentName"], ["invite_with_token"]]
    assert _token_calls(b, token_url) == [["invite_code"]], "B must join without a dispatch"

    # Both pages: the two callers by identity, and one agent, the same one.
    agent = _agent(report["rosters"]["joined"])
    assert _agent(b["rosters"]["joined"]) == agent
    shown = [(report, "joined", inviter, invitee), (b, "joined", invitee, inviter),
             (b, "answered", invitee, inviter)]  # fmt: skip
    for page, moment, me, other in shown:
        everyone = [("agent", agent, "Agent"), ("person", other, other), ("you", me, "You")]
        assert _people(page["rosters"][moment]) == everyone, page["rosters"][moment]
    assert _people(report["rosters"]["left"]) == [
        ("agent", agent, "Agent"),
        ("you", inviter, "You"),
    ]

    # A's page marked B speaking while B's microphone spoke (after B joined, by the time B's
    # words were transcribed), then the agent while it answered B.
    at = {step["name"]: step["atSeconds"] for step in report["steps"]}
    b_speaking = _marked(report, invitee, at["invitee-agent-joined"], at["invitee-transcribed"])
    assert b_speaking, report["speakingMarks"]
    assert _marked(report, agent, b_speaking[0], at["invitee-answered"]), report["speakingMarks"]

    # B's words and the agent's answer to them, attributed alike on both pages.
    said, answer = _turn(report["transcriptAtAnswer"], invitee, speaker="person")
    assert (said, answer) == _turn(b["transcriptAtAnswer"], invitee, speaker="user")
    assert answer == offline_reply(said), f"agent answered {answer!r} to B's {said!r}"
    assert states(b, "connectionStates")[-1] == "disconnected", b["connectionStates"]

    # Two people, one call: one session for the worker and in the operator's demand.
    assert during == [(1, 1)], during
    eventually(lambda: agent_worker.sample("voicefleet_agent_active_sessions") == 0, 30)
    eventually(lambda: agent_worker.sample("voicefleet_agent_sessions_total") > completed, 30)
    assert agent_worker.sample("voicefleet_agent_sessions_total") == completed + 1


def _demand(livekit: LiveKitServer, agent_name: str) -> int:
    """Sessions of the agent as the operator counts them from LiveKit."""

    async def poll() -> int:
        endpoint = Endpoint(livekit.url, livekit.api_key, livekit.api_secret)
        collector = Collector(endpoint, 1.0, lambda _: None)
        async with api.LiveKitAPI(endpoint.http_url, livekit.api_key, livekit.api_secret) as lk:
            await collector.poll(lk)
        assert collector.snapshot.error is None, collector.snapshot.error
        return collector.snapshot.sessions[agent_name]

    return asyncio.run(poll())


def _token_calls(page: Report, url: str) -> list[list[str]]:
    """The fields of each token function request the page made."""
    return [request["fields"] for request in page["requests"] if request["url"] == url]


def _people(roster: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((p["role"], p["identity"], p["name"]) for p in roster)


def _agent(roster: list[dict[str, Any]]) -> str:
    agents = [p["identity"] for p in roster if p["role"] == "agent"]
    assert len(agents) == 1, f"not exactly one agent: {roster}"
    return str(agents[0])


def _marked(page: Report, identity: str, after: float, before: float) -> list[float]:
    """When the page marked `identity` speaking between two moments of the call."""
    return [
        mark["atSeconds"]
        for mark in page["speakingMarks"]
        if mark["identity"] == identity
        and mark["speaking"]
        and after <= mark["atSeconds"] <= before
    ]


def _turn(transcript: list[dict[str, Any]], identity: str, *, speaker: str) -> tuple[str, str]:
    """The newest turn of `identity` (their final lines, all as `speaker`) and the agent line
    right after it."""
    last = max(i for i, line in enumerate(transcript) if line["identity"] == identity)
    first = last
    while first > 0 and transcript[first - 1]["identity"] == identity:
        first -= 1
    turn = transcript[first : last + 1]
    assert all(line["speaker"] == speaker and line["final"] for line in turn), transcript
    answers = transcript[last + 1 : last + 2]
    assert [(line["speaker"], line["final"]) for line in answers] == [("agent", True)], transcript
    answer = answers[0]
    return " ".join(line["text"] for line in turn), str(answer["text"])
