"""The worker's /metrics, /healthz and /readyz on `observability.metricsPort`.

/healthz is the framework's own health check (LiveKit connection, inference process), read
from its HTTP server. /readyz also requires the worker to be registered with LiveKit and not
draining: the framework's check stays green while a worker drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
from aiohttp import web

from voicefleet_agent import metrics

logger = logging.getLogger("voicefleet.agent")

PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2)


class HealthServer:
    def __init__(
        self,
        *,
        port: int,
        host: str | None = None,
        framework_port: Callable[[], int],
        draining: Callable[[], bool],
    ) -> None:
        self._port = port
        self._host = host
        self._framework_port = framework_port
        self._draining = draining
        self.registered = False
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(
            [
                web.get("/metrics", self._metrics),
                web.get("/healthz", self._healthz),
                web.get("/readyz", self._readyz),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        logger.info("serving /metrics, /healthz and /readyz", extra={"port": self._port})

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.render_latest)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def _framework_health(self) -> tuple[bool, str]:
        port = self._framework_port()
        if not port:
            return False, "worker HTTP server not started"
        try:
            # A session per probe: probes are rare and nothing is left open at exit.
            async with (
                aiohttp.ClientSession(timeout=PROBE_TIMEOUT) as session,
                session.get(f"http://localhost:{port}/") as response,
            ):
                return response.status == 200, (await response.text()).strip()
        except (aiohttp.ClientError, TimeoutError) as e:
            return False, f"worker HTTP server unreachable: {e}"

    async def _healthz(self, _: web.Request) -> web.Response:
        healthy, reason = await self._framework_health()
        return web.Response(status=200 if healthy else 503, text=reason)

    async def _readyz(self, _: web.Request) -> web.Response:
        if self._draining():
            return web.Response(status=503, text="draining")
        if not self.registered:
            return web.Response(status=503, text="not registered with LiveKit yet")
        healthy, reason = await self._framework_health()
        return web.Response(status=200 if healthy else 503, text=reason)
