"""What the operator writes into status about a failure: its own words, never the remote's."""

from __future__ import annotations

from kubernetes.client import ApiException
from livekit.api.twirp_client import TwirpError

from voicefleet_operator.autoscaler import secret_problem
from voicefleet_operator.livekit_load import brief

# What a URL a VoiceAgent's author points at might answer: nothing of it may reach status.
REMOTE = "<html>admin console, token=s3cr3t</html>"


def test_livekit_failures_are_described_by_reason_and_status_only() -> None:
    assert brief(TwirpError("unauthenticated", REMOTE, status=401)) == "Unauthorized (HTTP 401)"
    assert brief(TwirpError("internal", REMOTE, status=502)) == "Unreachable (HTTP 502)"
    assert brief(ConnectionRefusedError(REMOTE)) == "Unreachable (ConnectionRefusedError)"
    assert brief(TimeoutError(REMOTE)) == "Timeout (TimeoutError)"


def test_secret_failures_name_the_missing_key_or_the_status() -> None:
    missing = ApiException(status=404, reason="Not Found")
    missing.body = REMOTE
    assert secret_problem(missing) == "HTTP 404"
    assert secret_problem(KeyError("api-secret")) == "no key api-secret"
    assert secret_problem(ValueError(REMOTE)) == "ValueError"
