"""Thin Kubernetes client: server-side apply, list and delete of the objects the operator owns.

Failures surface as this module's own errors (NotFound, Conflict, Throttled, KubeError), so
callers say what they expect instead of comparing status codes. A throttled or failing API
server is asked again a few times, after the wait it names in Retry-After or a growing backoff.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes import client

from voicefleet_models.voice_agent import GROUP, PLURAL, VERSION

FIELD_MANAGER = "voicefleet-operator"
CONNECTIONS = 64
TIMEOUT = aiohttp.ClientTimeout(total=30)
TOKEN_TTL_SECONDS = 10.0
# Attempts per request, and the first backoff (doubled per attempt) where no Retry-After is
# given: a few seconds in all, short against the API server's priority-and-fairness queues.
ATTEMPTS = 4
BACKOFF_SECONDS = 0.25
# A longer Retry-After is cut to this: a reconcile or a tick must not hang on one request.
MAX_RETRY_AFTER_SECONDS = 10.0


class KubeError(Exception):
    """The API server refused a request: its HTTP status and its one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if message else f"HTTP {status}")
        self.status = status
        self.message = message


class NotFound(KubeError):  # noqa: N818 - the API server's StatusReason
    """404: the object, or the API, does not exist."""


class Conflict(KubeError):  # noqa: N818 - the API server's StatusReason
    """409: the object exists already, or changed since it was read."""


class Throttled(KubeError):  # noqa: N818 - the API server's StatusReason
    """429 still after every retry: the API server is shedding load."""


def error_for(status: int, body: bytes) -> KubeError:
    """The error for a non-2xx answer, with the message of the Status object the API server
    sends (plain text when some proxy answered instead)."""
    try:
        decoded = json.loads(body)
        message = str(decoded.get("message", "")) if isinstance(decoded, dict) else ""
    except ValueError:
        message = body.decode(errors="replace").strip()
    kind = {404: NotFound, 409: Conflict, 429: Throttled}.get(status, KubeError)
    return kind(status, message[:500])


def retry_delay(attempt: int, retry_after: str | None, backoff: float) -> float:
    """Seconds to wait before attempt `attempt + 1`: Retry-After's when it gives seconds, else
    `backoff` doubled per attempt already made."""
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_SECONDS)
        except ValueError:
            pass  # an HTTP date: rare from the API server, the backoff will do
    return float(backoff * 2**attempt)


def retryable(status: int, method: str) -> bool:
    """429 is never processed, so any request may go again; a 5xx write may have been, so
    only requests that are idempotent here (reads, apply, merge-patch, delete) go again."""
    return status == 429 or (status >= 500 and method != "POST")


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
    "NetworkPolicy": Kind("networking.k8s.io/v1", "networkpolicies"),
}
OWNED_KINDS = ("Deployment", "ConfigMap", "Service", "PodDisruptionBudget")


class Kube:
    """The few API calls the operator makes, over one aiohttp session on the event loop: no
    thread per request, and a connection pool shared by every handler."""

    def __init__(
        self,
        configuration: client.Configuration,
        *,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF_SECONDS,
    ) -> None:
        self.configuration = configuration
        self.attempts = attempts
        self.backoff = backoff
        self._session: aiohttp.ClientSession | None = None
        self._token_value: str | None = None
        self._token_read = float("-inf")

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
        """One request, retried while throttled or failing (see retryable): a read's decoded
        JSON answer, or a KubeError for a non-2xx status. Writes return None: the objects sent
        back are never read here, and decoding them would cost more CPU than sending."""
        payload = body if isinstance(body, str | None) else json.dumps(body)
        attempt = 0
        while True:
            status, data, retry_after = await self._send(method, path, query, content_type, payload)
            if 200 <= status < 300:
                return json.loads(data) if data and method == "GET" else None
            error = error_for(status, data)
            if attempt + 1 >= self.attempts or not retryable(status, method):
                raise error
            await asyncio.sleep(retry_delay(attempt, retry_after, self.backoff))
            attempt += 1

    async def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None,
        content_type: str,
        payload: str | None,
    ) -> tuple[int, bytes, str | None]:
        """One attempt: the status, the body, and Retry-After if the server sent one."""
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if token := self._token():
            headers["Authorization"] = token
        async with self._open().request(
            method, path, params=query, data=payload, headers=headers, timeout=TIMEOUT
        ) as response:
            return response.status, await response.read(), response.headers.get("Retry-After")

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

    async def scale(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        """Set spec.replicas alone, by merge patch: an apply of this one field would give up
        the operator's ownership of every other field of the object, and remove them."""
        await self._call(
            "PATCH",
            KINDS[kind].path(namespace, name),
            query=[("fieldManager", FIELD_MANAGER)],
            content_type="application/merge-patch+json",
            body={"spec": {"replicas": replicas}},
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
        """Delete the object if it exists: gone already is as good."""
        with contextlib.suppress(NotFound):
            await self._call(
                "DELETE",
                KINDS[kind].path(namespace, name),
                body={"propagationPolicy": "Background"},
            )

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
        except NotFound:
            return False
        return any(r.get("name") == target.plural for r in listing.get("resources", []))

    async def patch_status(self, namespace: str, name: str, changes: dict[str, Any]) -> None:
        """Merge-patch fields of a VoiceAgent's status."""
        await self._call(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status",
            content_type="application/merge-patch+json",
            body={"status": changes},
        )

    async def read(self, path: str) -> dict[str, Any]:
        """The object at `path` (an API path), decoded."""
        found: dict[str, Any] = await self._call("GET", path)
        return found

    async def create(self, path: str, body: dict[str, Any]) -> None:
        """POST `body` to the collection at `path`: never sent twice (see retryable)."""
        await self._call("POST", path, body=body)

    async def replace(self, path: str, body: dict[str, Any]) -> None:
        """PUT `body` at `path`; its metadata.resourceVersion, if any, makes it conditional:
        Conflict when the object changed since it was read."""
        await self._call("PUT", path, body=body)

    async def merge_patch(self, path: str, changes: dict[str, Any]) -> None:
        await self._call("PATCH", path, content_type="application/merge-patch+json", body=changes)
