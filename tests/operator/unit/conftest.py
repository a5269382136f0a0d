"""A local HTTP server that answers as the Kubernetes API server would, for the client and
for what the operator sends through it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes import client

from voicefleet_operator.kube import Kube


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    at: float  # monotonic seconds
    content_type: str
    body: str


@dataclass
class Answer:
    status: int
    body: object = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeApiServer:
    """Answers each request with the next scripted answer (then 200 {}), and records it."""

    answers: list[Answer] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.seen.append(
            Request(request.method, request.path, time.monotonic(), request.content_type, body)
        )
        answer = self.answers.pop(0) if self.answers else Answer(200)
        if isinstance(answer.body, str):  # a proxy's page, not the API server's Status
            return web.Response(text=answer.body, status=answer.status, headers=answer.headers)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)


def status_object(code: int, message: str) -> dict[str, object]:
    return {"kind": "Status", "status": "Failure", "message": message, "code": code}


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApiServer, Kube]]:
    fake = FakeApiServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    configuration = client.Configuration(host=str(server.make_url("")).rstrip("/"))
    kube = Kube(configuration, backoff=0.01)
    try:
        yield fake, kube
    finally:
        await kube.close()
        await server.close()
