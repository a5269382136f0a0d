"""Thin Kubernetes client: server-side apply, list and delete of the objects the operator owns."""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes import client

from voicefleet_operator.spec import GROUP, KIND, PLURAL, VERSION

FIELD_MANAGER = "voicefleet-operator"
CONNECTIONS = 64
TIMEOUT = aiohttp.ClientTimeout(total=30)
TOKEN_TTL_SECONDS = 10.0


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the API."""

    group_version: str
    plural: str

    def path(self, namespace: str, name: str | None = None) -> str:
        prefix = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        base = f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{name}" if name else base


KINDS: dict[str, Kind] = {
    "ConfigMap": Kind("v1", "configmaps"),
    "Service": Kind("v1", "services"),
    "Pod": Kind("v1", "pods"),
    "Deployment": Kind("apps/v1", "deployments"),
    "PodDisruptionBudget": Kind("policy/v1", "poddisruptionbudgets"),
    "PrometheusRule": Kind("monitoring.coreos.com/v1", "prometheusrules"),
}
OWNED_KINDS = ("Deployment", "ConfigMap", "Service", "PodDisruptionBudget")


class Kube:
    """The few API calls the operator makes, over one aiohttp session on the event loop: no
    thread per request, and a connection pool shared by every handler."""

    def __init__(self) -> None:
        self._configuration: client.Configuration | None = None
        self._session: aiohttp.ClientSession | None = None
        self._token_value: str | None = None
        self._token_read = float("-inf")

    def use(self, configuration: client.Configuration) -> None:
        """Talk to the cluster `configuration` describes (loaded after the handlers exist)."""
        self._configuration = configuration
        self._token_read = float("-inf")

    @property
    def configuration(self) -> client.Configuration:
        if self._configuration is None:
            raise RuntimeError("no cluster configured: call Kube.use() first")
        return self._configuration

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            cfg = self.configuration
            tls: ssl.SSLContext | bool = False
            if cfg.verify_ssl:
                tls = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
            if cfg.cert_file and isinstance(tls, ssl.SSLContext):
                tls.load_cert_chain(cfg.cert_file, cfg.key_file)
            connector = aiohttp.TCPConnector(limit=CONNECTIONS, ssl=tls)
            # The user agent names the field manager of writes without an explicit one.
            agent = {"User-Agent": FIELD_MANAGER}
            self._session = aiohttp.ClientSession(cfg.host, connector=connector, headers=agent)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        body: Any = None,
    ) -> Any:
        """One request: a read's decoded JSON answer, or ApiException for a non-2xx status.
        Writes return None: the objects sent back are never read here, and decoding them
        would cost more CPU than sending the request."""
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if token := self._token():
            headers["Authorization"] = token
        payload = body if isinstance(body, str | None) else json.dumps(body)
        async with self._open().request(
            method, path, params=query, data=payload, headers=headers, timeout=TIMEOUT
        ) as response:
            data = await response.read()
            if not 200 <= response.status < 300:
                raise client.ApiException(
                    status=response.status, reason=response.reason, body=data.decode()
                )
        return json.loads(data) if data and method == "GET" else None

    def _token(self) -> str | None:
        """The bearer token, asked of the client configuration every few seconds: its refresh
        hook re-reads a rotated in-cluster token, but rebuilds settings on every call."""
        now = time.monotonic()
        if now - self._token_read > TOKEN_TTL_SECONDS:
            cfg = self.configuration
            self._token_value = cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
            self._token_read = now
        return self._token_value

    async def apply(self, manifest: dict[str, Any]) -> None:
        """Server-side apply: we own exactly the fields we send, others keep theirs."""
        meta = manifest["metadata"]
        await self._call(
            "PATCH",
            KINDS[manifest["kind"]].path(meta["namespace"], meta["name"]),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            # JSON is YAML, and serializes an order of magnitude faster than PyYAML.
            content_type="application/apply-patch+yaml",
            body=json.dumps(manifest),
        )

    async def list(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        result = await self._call(
            "GET",
            KINDS[kind].path(namespace),
            query=[("labelSelector", label_selector)],
        )
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            await self._call(
                "DELETE",
                KINDS[kind].path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except client.ApiException as error:
            if error.status != 404:
                raise

    async def annotate(
        self, kind: str, namespace: str, name: str, annotations: Mapping[str, str | None]
    ) -> None:
        """Merge `annotations` into the object's; a None value removes that annotation."""
        await self._call(
            "PATCH",
            KINDS[kind].path(namespace, name),
            content_type="application/merge-patch+json",
            body={"metadata": {"annotations": annotations}},
        )

    async def secret(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's data, decoded."""
        secret = await self._call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        data = secret.get("data", {})
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    async def serves(self, kind: str) -> bool:
        """Whether the API server serves `kind`, e.g. PrometheusRule once the Prometheus
        Operator is installed."""
        target = KINDS[kind]
        try:
            listing = await self._call("GET", f"/apis/{target.group_version}")
        except client.ApiException as error:
            if error.status == 404:
                return False
            raise
        return any(r.get("name") == target.plural for r in listing.get("resources", []))

    async def patch_status(self, namespace: str, name: str, changes: dict[str, Any]) -> None:
        """Merge-patch fields of a VoiceAgent's status."""
        await self._call(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status",
            content_type="application/merge-patch+json",
            body={"status": changes},
        )

    async def post_event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about a VoiceAgent, as `kubectl describe` shows them."""
        meta = body["metadata"]
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._call("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=event)
