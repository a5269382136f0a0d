"""End-to-end fixtures: a real agent worker, the token function on Deno, the built frontend.

Each server starts once per session on free loopback ports (the token function per test, so a
test can run without it); a part that does not start fails the tests that need it, by name.
Screenshots and browser reports are kept under test-artifacts/e2e/ at the repository root.
"""

from __future__ import annotations

import functools
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import AgentWorker, pipeline_config
from tests.e2e.browser import FRONTEND, ROOT, fresh_dir, speech_wav
from tests.e2e.supabase_project import SupabaseProject
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import ComponentError, Process, binary, free_port, port_open

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
TOKEN_FUNCTION = ROOT / "supabase" / "functions" / "livekit-token"
OFFLINE = [{"provider": "offline"}]
BUILD_TIMEOUT = 240.0

_kept: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _kept:
        terminalreporter.write_sep("-", "e2e screenshots and browser reports")
        for path in _kept:
            terminalreporter.write_line(str(path))


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """An emptied test-artifacts/e2e/<test name>/ for this test's screenshots and report."""
    path = fresh_dir(ARTIFACTS / request.node.name)
    _kept.append(path)
    print(f"e2e artifacts: {path}")
    return path


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_wav(tmp_path_factory.mktemp("speech") / "speech.wav")


@pytest.fixture(scope="session")
def agent_name() -> str:
    return f"vf-e2e-{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def agent_worker(
    livekit: LiveKitServer, agent_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentWorker]:
    """A real worker with the keyless offline pipeline: PocketSphinx, labelled LLM, espeak-ng."""
    config = pipeline_config(agent_name, OFFLINE, OFFLINE, OFFLINE, region="e2e")
    worker = AgentWorker(config, livekit, tmp_path_factory.mktemp("e2e-worker"))
    try:
        yield worker.start()
    finally:
        worker.stop()


@dataclass
class TokenService:
    """supabase/functions/livekit-token served by `deno run`, as in local development."""

    livekit: LiveKitServer
    port: int
    agent_name: str
    log: Path
    site_origins: tuple[str, ...]  # the frontends' origins: the ones CORS lets call
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/functions/v1/livekit-token"

    def start(
        self, *, guests: bool = True, supabase_url: str | None = None, max_callers: int = 1
    ) -> TokenService:
        """Guests on, as in the keyless demo; or off, trusting the key set of `supabase_url`.
        Rooms hold one caller, as by default; `max_callers` above 1 turns invites on."""
        assert not port_open(self.port), f"token port {self.port} is taken"
        env = {
            "PORT": str(self.port),
            "LIVEKIT_URL": self.livekit.url,
            "LIVEKIT_API_KEY": self.livekit.api_key,
            "LIVEKIT_API_SECRET": self.livekit.api_secret,
            "LIVEKIT_AGENT_NAME": self.agent_name,
            "ALLOW_GUESTS": "true" if guests else "false",
            "CORS_ALLOWED_ORIGINS": ",".join(self.site_origins),
            "ROOM_MAX_CALLERS": str(max_callers),
        }
        if supabase_url is not None:
            env["SUPABASE_URL"] = supabase_url
        command = [binary("deno"), "run", "--allow-net", "--allow-env", "index.ts"]
        self.process = Process("livekit-token (Deno)", command, self.log, env, TOKEN_FUNCTION)
        self.process.start().wait_until(lambda: port_open(self.port), 60, f"serving {self.url}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture(scope="session")
def token_port() -> int:
    """Fixed for the session: the frontend is built with the token URL in it."""
    return free_port()


@pytest.fixture(scope="session")
def site_port() -> int:
    """Fixed for the session: the token function allows the frontend's origin."""
    return free_port()


@pytest.fixture(scope="session")
def signin_site_port() -> int:
    """Fixed for the session: the frontend built with sign-in is served here."""
    return free_port()


@pytest.fixture
def token_service(
    livekit: LiveKitServer,
    token_port: int,
    site_port: int,
    signin_site_port: int,
    agent_name: str,
    servers_dir: Path,
) -> Iterator[TokenService]:
    """Not started: a test starts it when it wants it up."""
    log = servers_dir / "token-function.log"
    origins = tuple(f"http://127.0.0.1:{port}" for port in (site_port, signin_site_port))
    service = TokenService(livekit, token_port, agent_name, log, origins)
    try:
        yield service
    finally:
        service.stop()


# Callers a room holds when invites are on: the one who started the call and two invited.
PARTY_CALLERS = 3


@pytest.fixture
def inviting_token_service(
    token_service: TokenService, supabase_project: SupabaseProject
) -> TokenService:
    """The token function started with invites on: signed-in callers only (guests cannot
    invite), trusting `supabase_project`, rooms of up to PARTY_CALLERS callers."""
    return token_service.start(
        guests=False, supabase_url=supabase_project.url, max_callers=PARTY_CALLERS
    )


class StaticSite:
    """Serves a built frontend over HTTP on a free loopback port."""

    def __init__(self, root: Path, port: int) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def build_frontend(out: Path, log: Path, **variables: str) -> Path:
    """`npm run build` with Vite variables, as a deployment builds it; fails with the log."""
    env = {**os.environ, **variables}
    command = ["npm", "run", "--silent", "build", "--", "--outDir", str(out), "--emptyOutDir"]
    with log.open("w") as output:
        result = subprocess.run(
            command, cwd=FRONTEND, env=env, stdout=output, stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT, check=False,
        )  # fmt: skip
    if result.returncode != 0 or not (out / "index.html").exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise ComponentError(f"frontend build failed ({result.returncode}); log: {log}\n{tail}")
    return out


@pytest.fixture(scope="session")
def frontend(
    tmp_path_factory: pytest.TempPathFactory, token_port: int, site_port: int, agent_name: str
) -> Iterator[str]:
    """URL of the frontend built against this session's token function and agent, no sign-in."""
    work = tmp_path_factory.mktemp("frontend")
    token_url = f"http://127.0.0.1:{token_port}/functions/v1/livekit-token"
    # Empty values win over any frontend/.env a developer keeps: this build has no sign-in.
    # The test hooks let a test run the LiveKit client's own reconnect scenarios.
    dist = build_frontend(work / "dist", work / "build.log", VITE_TOKEN_ENDPOINT=token_url,
                          VITE_AGENT_NAME=agent_name, VITE_E2E_HOOKS="true",
                          **NO_SIGN_IN)  # fmt: skip
    site = StaticSite(dist, site_port)
    try:
        yield site.url
    finally:
        site.close()


NO_SIGN_IN = {
    "VITE_SUPABASE_URL": "",
    "VITE_SUPABASE_PUBLISHABLE_KEY": "",
    "VITE_SUPABASE_ANON_KEY": "",
    "VITE_ALLOW_GUESTS": "",
}


@pytest.fixture(scope="session")
def supabase_project() -> Iterator[SupabaseProject]:
    project = SupabaseProject()
    try:
        yield project
    finally:
        project.close()


@pytest.fixture(scope="session")
def signin_frontend(
    tmp_path_factory: pytest.TempPathFactory,
    token_port: int,
    signin_site_port: int,
    agent_name: str,
    supabase_project: SupabaseProject,
) -> Iterator[str]:
    """URL of the frontend built with sign-in: Supabase configured, guests not offered."""
    work = tmp_path_factory.mktemp("frontend-signin")
    token_url = f"http://127.0.0.1:{token_port}/functions/v1/livekit-token"
    variables = {
        **NO_SIGN_IN,
        "VITE_TOKEN_ENDPOINT": token_url,
        "VITE_AGENT_NAME": agent_name,
        "VITE_SUPABASE_URL": supabase_project.url,
        "VITE_SUPABASE_PUBLISHABLE_KEY": "sb_publishable_voicefleet_e2e",
    }
    dist = build_frontend(work / "dist", work / "build.log", **variables)
    site = StaticSite(dist, signin_site_port)
    try:
        yield site.url
    finally:
        site.close()
