"""The Kubernetes objects of one region's fleet, as plain functions of the VoiceAgent.

Nothing here talks to the API server: the handlers apply what these functions return.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from voicefleet_models.pricing import PRICING_FILE_VARIABLE, Pricing
from voicefleet_models.voice_agent import GROUP, KIND, VERSION, RegionSpec, VoiceAgentSpec
from voicefleet_operator.sizing import worker_resources

Manifest = dict[str, Any]

CONFIG_FILE = "agent.json"
CONFIG_DIR = "/etc/voicefleet"
PRICING_DIR = "/etc/voicefleet-pricing"
PRICING_FILE = "pricing.json"
CONFIG_HASH_LABEL = "voicefleet.io/config-hash"
CONFIG_HASH_LENGTH = 10
# Time the worker needs after its drain timeout to flush metrics and traces and exit.
EXIT_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class Owner:
    """The VoiceAgent that owns the rendered objects."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> Manifest:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def fleet_name(owner: Owner, region: str) -> str:
    """Name shared by a region's Deployment, ConfigMap, Service and PDB."""
    return f"{owner.name}-{region}"


def labels(owner: Owner, region: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "voicefleet-agent",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/managed-by": "voicefleet",
        "voicefleet.io/agent": owner.name,
        "voicefleet.io/region": region,
    }


def selector(owner: Owner, region: str) -> dict[str, str]:
    return {"voicefleet.io/agent": owner.name, "voicefleet.io/region": region}


def region_objects(
    owner: Owner, spec: VoiceAgentSpec, region: RegionSpec, replicas: int
) -> list[Manifest]:
    """ConfigMap, Deployment, headless metrics Service and PodDisruptionBudget of a region."""
    config = config_map(owner, spec, region)
    return [
        config,
        deployment(owner, spec, region, replicas, config["metadata"]["name"]),
        metrics_service(owner, spec, region),
        disruption_budget(owner, region),
    ]


def _metadata(owner: Owner, region: str) -> Manifest:
    return {
        "name": fleet_name(owner, region),
        "namespace": owner.namespace,
        "labels": labels(owner, region),
        "ownerReferences": [owner.reference()],
    }


def config_map(owner: Owner, spec: VoiceAgentSpec, region: RegionSpec) -> Manifest:
    """The worker configuration, immutable and named by its content: a change makes a new
    ConfigMap and rolls the Deployment, while running and draining workers keep (and fork
    their job processes with) the configuration they started with."""
    data = spec.agent_config(owner.name, region).model_dump_json(by_alias=True, indent=2)
    digest = hashlib.sha256(data.encode()).hexdigest()[:CONFIG_HASH_LENGTH]
    metadata = _metadata(owner, region.name)
    metadata["name"] = f"{fleet_name(owner, region.name)}-{digest}"
    metadata["labels"][CONFIG_HASH_LABEL] = digest
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "immutable": True,
        "data": {CONFIG_FILE: data},
    }


def pricing_name(owner: Owner) -> str:
    return f"{owner.name}-pricing"[:253]


def pricing_config_map(owner: Owner, pricing: Pricing) -> Manifest:
    """The cluster's prices for the VoiceAgent's workers. Mounted whole (not by subPath), so
    the kubelet brings a change to running workers: prices never roll a fleet."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": pricing_name(owner),
            "namespace": owner.namespace,
            "labels": {k: v for k, v in labels(owner, "").items() if k != "voicefleet.io/region"},
            "ownerReferences": [owner.reference()],
        },
        "data": {PRICING_FILE: pricing.model_dump_json(by_alias=True, indent=2)},
    }


def config_in_use(pod: Manifest) -> str | None:
    """The worker configuration a pod mounts."""
    for volume in pod.get("spec", {}).get("volumes", []):
        if volume.get("name") == "config":
            name: str | None = volume.get("configMap", {}).get("name")
            return name
    return None


def deployment(
    owner: Owner, spec: VoiceAgentSpec, region: RegionSpec, replicas: int, config: str
) -> Manifest:
    # The operator's labels win: its selector and the autoscaler find workers by them.
    pod_metadata: Manifest = {"labels": {**spec.pod_labels, **labels(owner, region.name)}}
    if spec.pod_annotations:
        pod_metadata["annotations"] = dict(spec.pod_annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, region.name),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector(owner, region.name)},
            # Never take a serving worker away before its replacement is ready.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": pod_metadata,
                "spec": {
                    **_pod_spec(config, pricing_name(owner), spec, region),
                    **_placement(owner, spec, region),
                },
            },
        },
    }


def _pod_spec(config: str, pricing: str, spec: VoiceAgentSpec, region: RegionSpec) -> Manifest:
    port = spec.observability.metrics_port
    pod: Manifest = {
        # The worker drains for drainTimeoutSeconds on SIGTERM; the kubelet must wait longer.
        "terminationGracePeriodSeconds": spec.drain_timeout_seconds + EXIT_MARGIN_SECONDS,
        # Workers never call the Kubernetes API: no token for a compromised one to use.
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "agent",
                "image": spec.image,
                "imagePullPolicy": spec.image_pull_policy,
                "args": ["start"],
                "env": _env(spec, region),
                "ports": [{"name": "metrics", "containerPort": port}],
                **_probes(),
                "resources": worker_resources(
                    spec.resources.requests, spec.resources.limits, spec.scaling.sessions_per_worker
                ),
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                    {"name": "pricing", "mountPath": PRICING_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": config}},
            # Optional: a worker starts before its prices exist, and goes on without them.
            {"name": "pricing", "configMap": {"name": pricing, "optional": True}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if spec.service_account_name:
        pod["serviceAccountName"] = spec.service_account_name
    if spec.image_pull_secrets:
        pod["imagePullSecrets"] = [s.model_dump() for s in spec.image_pull_secrets]
    if spec.priority_class_name:
        pod["priorityClassName"] = spec.priority_class_name
    return pod


def _placement(owner: Owner, spec: VoiceAgentSpec, region: RegionSpec) -> Manifest:
    """Where a region's workers may run: the VoiceAgent's scheduling options plus the
    region's node pool (its nodeSelector and tolerations)."""
    placement: Manifest = {}
    if region.node_selector:
        placement["nodeSelector"] = dict(region.node_selector)
    tolerations = [*spec.tolerations, *region.tolerations]
    if tolerations:
        placement["tolerations"] = [_dump(t) for t in tolerations]
    affinity = _dump(spec.affinity) if spec.affinity else {}
    if affinity:
        placement["affinity"] = affinity
    if spec.topology_spread_constraints:
        placement["topologySpreadConstraints"] = [
            {"labelSelector": {"matchLabels": selector(owner, region.name)}, **_dump(c)}
            for c in spec.topology_spread_constraints
        ]
    return placement


def _dump(model: BaseModel) -> Manifest:
    return model.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)


def _probes() -> Manifest:
    """A worker starts in about 2 s (bench/agent_start.py, bench/node_start.py); the startup
    probe allows a minute on a loaded node. Once started, liveness tolerates a minute of slow
    answers before a restart, since a restart cuts every call of the worker; readiness reacts
    in seconds (an unregistered or draining worker is not ready) and restarts nothing."""
    health = {"httpGet": {"path": "/healthz", "port": "metrics"}, "timeoutSeconds": 2}
    return {
        "startupProbe": {**health, "periodSeconds": 1, "failureThreshold": 60},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "metrics"},
            "timeoutSeconds": 2,
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            **health,
            "timeoutSeconds": 5,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
    }


def _env(spec: VoiceAgentSpec, region: RegionSpec) -> list[Manifest]:
    secret = region.livekit.credentials_secret
    fixed: list[Manifest] = [
        {"name": "VOICEFLEET_CONFIG", "value": f"{CONFIG_DIR}/{CONFIG_FILE}"},
        {"name": "LIVEKIT_URL", "value": region.livekit.url},
        _secret_env("LIVEKIT_API_KEY", secret, "api-key"),
        _secret_env("LIVEKIT_API_SECRET", secret, "api-secret"),
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": PRICING_FILE_VARIABLE, "value": f"{PRICING_DIR}/{PRICING_FILE}"},
    ]
    user = [e.model_dump(by_alias=True, exclude_none=True) for e in spec.env]
    return fixed + user


def _secret_env(name: str, secret: str, key: str) -> Manifest:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def metrics_service(owner: Owner, spec: VoiceAgentSpec, region: RegionSpec) -> Manifest:
    port = spec.observability.metrics_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, region.name),
        "spec": {
            "clusterIP": "None",
            "selector": selector(owner, region.name),
            "ports": [{"name": "metrics", "port": port, "targetPort": "metrics"}],
        },
    }


def disruption_budget(owner: Owner, region: RegionSpec) -> Manifest:
    # Voluntary evictions (node drains) take one worker at a time; the worker drains itself.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(owner, region.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(owner, region.name)}},
    }
