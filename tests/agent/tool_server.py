"""A real HTTP server on loopback for the agent's tools: it records every request and answers
as its route says (a result, slowly, an error status, or too much)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SLOW_SECONDS = 5.0


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class ToolServer:
    runner: web.AppRunner | None = None
    port: int = 0
    received: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def calls(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def start(self) -> ToolServer:
        app = web.Application()
        app.router.add_route("*", "/weather", self._weather)
        app.router.add_route("*", "/slow", self._slow)
        app.router.add_route("*", "/broken", self._broken)
        app.router.add_route("*", "/big", self._big)
        app.router.add_route("*", "/long", self._long)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _record(self, request: web.Request) -> Received:
        raw = await request.read()
        received = Received(
            request.method,
            request.path,
            dict(request.query),
            json.loads(raw) if raw else None,
            dict(request.headers),
        )
        self.received.append(received)
        return received

    async def _weather(self, request: web.Request) -> web.Response:
        received = await self._record(request)
        city = (received.body or received.query).get("city", "nowhere")
        return web.json_response({"city": city, "forecast": f"sunny in {city}"})

    async def _slow(self, request: web.Request) -> web.Response:
        await self._record(request)
        await asyncio.sleep(SLOW_SECONDS)
        return web.json_response({"late": True})

    async def _broken(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"error": "database down"}, status=500)

    async def _big(self, request: web.Request) -> web.StreamResponse:
        """2 MiB in chunks, without a Content-Length: only counting reveals the size."""
        await self._record(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(32):
            await response.write(b"x" * 65536)
        await response.write_eof()
        return response

    async def _long(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(text="word " * 2000)
