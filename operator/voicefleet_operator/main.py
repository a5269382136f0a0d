"""`voicefleet-operator`: run the VoiceAgent controller."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

import kopf
import pydantic
from aiohttp import web
from kubernetes import client
from kubernetes import config as kube_config
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from voicefleet_models.pricing import Pricing
from voicefleet_operator import handlers  # noqa: F401 - importing it registers the handlers
from voicefleet_operator.health import Liveness
from voicefleet_operator.kube import Kube
from voicefleet_operator.leadership import Leadership, LeaseConfig, lease_namespace, own_identity
from voicefleet_operator.livekit_load import Collectors, receive_webhook
from voicefleet_operator.state import Launch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="voicefleet-operator", description=__doc__)
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="reconcile VoiceAgents of this namespace only (repeatable; default: all)",
    )
    parser.add_argument("--metrics-port", type=int, default=8080, help="/metrics and /healthz")
    parser.add_argument("--metrics-host", default="0.0.0.0", help="address of the metrics port")
    parser.add_argument(
        "--webhook-port", type=int, default=8081, help="LiveKit webhooks (/livekit/webhook) only"
    )
    parser.add_argument("--webhook-host", default="0.0.0.0", help="address of the webhook port")
    parser.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hold a Lease to act, so that replicas stand by for one another (default: on)",
    )
    parser.add_argument(
        "--leader-election-namespace",
        help="namespace of the Lease (default: the pod's own, else `default`)",
    )
    parser.add_argument("--leader-election-name", default="voicefleet-operator")
    parser.add_argument(
        "--network-policies",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give each region's workers a NetworkPolicy (default: on)",
    )
    parser.add_argument("--log-level", default=os.environ.get("VOICEFLEET_LOG_LEVEL", "info"))
    parser.add_argument(
        "--pricing-file",
        type=Path,
        help="the chart's pricing values as JSON: the unit prices workers estimate call cost with",
    )
    return parser.parse_args(argv)


def load_pricing(path: Path | None) -> Pricing:
    """The prices in `path`; a file that is missing or wrong stops the operator with why."""
    if path is None:
        return Pricing()
    try:
        return Pricing.model_validate_json(path.read_text())
    except (OSError, pydantic.ValidationError) as error:
        raise SystemExit(f"voicefleet-operator: --pricing-file {path}: {error}") from None


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def metrics_app(leadership: Leadership, liveness: Liveness) -> web.Application:
    """The metrics port: /metrics for Prometheus, /healthz for the kubelet (see health.py)."""

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        problems = liveness.problems(leading=leadership.leading.is_set())
        return web.Response(text="\n".join(problems) or "ok", status=500 if problems else 200)

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics), web.get("/healthz", healthz)])
    return app


def webhook_app(leadership: Leadership, collectors: Collectors) -> web.Application:
    """The webhook port, the one an Ingress may expose: LiveKit's webhooks and nothing else,
    for the `collectors` the autoscaling loop polls."""

    async def livekit_webhook(request: web.Request) -> web.Response:
        if not leadership.leading.is_set():
            # A standby polls nothing: LiveKit retries, and the Service may pick the leader.
            return web.json_response({"error": "standby replica"}, status=503,
                                     headers={"Retry-After": "1"})  # fmt: skip
        body = await request.text()
        event = receive_webhook(collectors, body, request.headers.get("Authorization", ""))
        if event is None:
            return web.json_response(
                {"error": "signature not valid for any known endpoint"}, status=401
            )
        return web.json_response({"event": event})

    app = web.Application(client_max_size=1 << 20)
    app.add_routes([web.post("/livekit/webhook", livekit_webhook)])
    return app


def leadership_of(args: argparse.Namespace, configuration: client.Configuration) -> Leadership:
    if not args.leader_election:
        return Leadership.alone()
    namespace = lease_namespace(args.leader_election_namespace)
    config = LeaseConfig(namespace, args.leader_election_name, own_identity())
    return Leadership(Kube(configuration), config)


def _quiet_watch_successes(record: logging.LogRecord) -> bool:
    """Every watch event of a VoiceAgent feeds the autoscaler; those lines drown the useful."""
    return not record.getMessage().startswith("Handler 'track' succeeded")


def load_kubernetes_config() -> client.Configuration:
    # A configuration of our own: kopf's login replaces the client library's global default.
    configuration = client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException:
        kube_config.load_kube_config(client_configuration=configuration)
    return configuration


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # The operator has no right to list namespaces and CRDs cluster-wide (see docs/install.md):
    # it serves the namespaces it was given and the CRD present at start, without retrying.
    settings.scanning.disabled = True
    return settings


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    pricing = load_pricing(args.pricing_file)
    kopf.configure(
        log_format=kopf.LogFormat.JSON,
        verbose=args.log_level == "debug",
        quiet=args.log_level in ("warning", "error"),
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").addFilter(_quiet_watch_successes)
    configuration = load_kubernetes_config()

    async def run() -> None:
        # Made on the event loop they poll from; the startup handler hands them to the loop.
        collectors, leadership = Collectors(), leadership_of(args, configuration)
        launch = Launch(configuration, pricing, collectors, leadership, Liveness(),
                        args.network_policies)  # fmt: skip
        runners = [
            await serve(metrics_app(leadership, launch.liveness), args.metrics_host,
                        args.metrics_port),
            await serve(webhook_app(leadership, collectors), args.webhook_host,
                        args.webhook_port),
        ]  # fmt: skip
        launch.liveness.elector = leadership
        launch.liveness.election = asyncio.create_task(leadership.run(), name="leader election")
        stop = asyncio.Event()
        # A replica that lost the lease stops and is restarted as a standby: its in-memory
        # state may be behind what the new leader did meanwhile.
        lost = asyncio.create_task(watch_lost(leadership, stop))
        try:
            await kopf.operator(
                standalone=True,
                clusterwide=not args.namespace,
                namespaces=args.namespace,
                settings=operator_settings(),
                memo=kopf.Memo(launch=launch),
                stop_flag=stop,
            )
        finally:
            lost.cancel()
            launch.liveness.election.cancel()
            await leadership.release()
            for runner in runners:
                await runner.cleanup()
        if leadership.lost.is_set():
            raise SystemExit("voicefleet-operator: lost the leader lease; restarting as standby")

    asyncio.run(run())


async def watch_lost(leadership: Leadership, stop: asyncio.Event) -> None:
    await leadership.lost.wait()
    stop.set()


if __name__ == "__main__":
    main()
