"""The VoiceAgent resource, defined once.

The CRD schema (manifests/ and the chart), the configuration reference in docs/ and the agent's
config parser all come from these models. Validation that the API server must enforce is
expressed here too: field constraints become OpenAPI bounds and patterns, and rules across
fields become CEL `x-kubernetes-validations` with a message a person understands.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from voicefleet_agent.config import (
    LATENCY_BUCKETS,
    PROVIDER_KEYS,
    AgentConfig,
    CallSpec,
    Model,
    ObservabilitySpec,
    PipelineSpec,
    Ratio,
)

GROUP = "voicefleet.io"
VERSION = "v1alpha1"
KIND = "VoiceAgent"
PLURAL = "voiceagents"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
Window = Annotated[int, Field(ge=0, le=3600)]


def cel(*rules: tuple[str, str]) -> JsonDict:
    """CEL validation rules (rule, message) for the CRD schema."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class LiveKitSpec(Model):
    """The LiveKit deployment a region's workers connect to."""

    url: str = Field(pattern=r"^(wss?|https?)://[^\s]+$")
    """LiveKit server URL (ws, wss, http or https)."""
    credentials_secret: str = Field(max_length=253, pattern=DNS_SUBDOMAIN)
    """Secret in the VoiceAgent's namespace with keys api-key and api-secret."""


class RegionSpec(Model):
    """One region: a LiveKit deployment and the worker fleet that serves it."""

    model_config = ConfigDict(
        **Model.model_config,
        json_schema_extra=cel(
            (
                "self.minReplicas <= self.maxReplicas",
                "minReplicas must be less than or equal to maxReplicas",
            )
        ),
    )

    name: str = Field(max_length=40, pattern=DNS_LABEL)
    """Region name, a DNS label; part of the names of the objects created for it."""
    livekit: LiveKitSpec
    """LiveKit server of this region."""
    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Fewest workers kept, even with no demand."""
    max_replicas: int = Field(default=10, ge=1, le=1000)
    """Most workers, whatever the demand."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels the region's workers must run on."""

    @model_validator(mode="after")
    def _bounds(self) -> RegionSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must be less than or equal to maxReplicas")
        return self


class ScalingSpec(Model):
    """How many workers each region runs for the calls LiveKit is carrying."""

    sessions_per_worker: int = Field(default=8, ge=1, le=256)
    """Concurrent sessions one worker serves; capacity is this times ready workers."""
    warm_workers: int = Field(default=1, ge=0, le=100)
    """Idle workers kept on top of demand so a new call never waits for a pod."""
    headroom_percent: int = Field(default=20, ge=0, le=1000)
    """Extra capacity above current demand, in percent."""
    scale_up_stabilization_seconds: Window = 0
    """Scale up to the lowest recommendation of this window (0: at once)."""
    scale_down_stabilization_seconds: Window = 300
    """Scale down only to the highest recommendation of this window."""
    poll_interval_seconds: int = Field(default=5, ge=1, le=300)
    """How often LiveKit's RoomService is polled; webhooks are seen sooner."""
    max_scale_up_step: int = Field(default=10, ge=1, le=1000)
    """Most workers added in one decision."""
    max_scale_down_step: int = Field(default=2, ge=1, le=1000)
    """Most workers removed in one decision."""


class SLOSpec(Model):
    """Service level objectives, turned into Prometheus rules and burn-rate alerts."""

    voice_to_voice_seconds: float = Field(
        default=1.5,
        # The API server does not enforce enums of numbers; CEL does.
        json_schema_extra=cel(
            (
                f"self in [{', '.join(repr(b) for b in LATENCY_BUCKETS)}]",
                "voiceToVoiceSeconds must be a latency bucket bound: "
                + ", ".join(f"{b:g}" for b in LATENCY_BUCKETS),
            )
        ),
    )
    """Latency threshold from the user's last word to the agent's first audio; one of the
    latency histogram's bucket bounds, so the SLI is exact."""

    @field_validator("voice_to_voice_seconds")
    @classmethod
    def _bucket_bound(cls, value: float) -> float:
        if value not in LATENCY_BUCKETS:
            allowed = ", ".join(f"{b:g}" for b in LATENCY_BUCKETS)
            raise ValueError(f"voiceToVoiceSeconds must be one of {allowed}")
        return value

    voice_to_voice_objective: Ratio = 0.95
    """Share of turns that must be faster than voiceToVoiceSeconds."""
    session_success_objective: Ratio = 0.999
    """Share of sessions that must end without error."""


class SecretKeyRef(Model):
    """A key of a Secret in the VoiceAgent's namespace."""

    name: str
    """Secret name."""
    key: str
    """Key in the Secret."""
    optional: bool | None = None
    """Whether the key may be absent."""


class ConfigMapKeyRef(SecretKeyRef):
    """A key of a ConfigMap in the VoiceAgent's namespace."""


class EnvVarSource(Model):
    """Where an environment variable's value comes from."""

    secret_key_ref: SecretKeyRef | None = None
    """A key of a Secret."""
    config_map_key_ref: ConfigMapKeyRef | None = None
    """A key of a ConfigMap."""


class EnvVar(Model):
    """An environment variable of the worker containers (as core/v1 EnvVar)."""

    name: str = Field(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    """Variable name."""
    value: str | None = None
    """Literal value; use valueFrom for keys."""
    value_from: EnvVarSource | None = None
    """Value from a Secret or ConfigMap."""


class Resources(Model):
    """Compute resources of one worker container (as core/v1 ResourceRequirements)."""

    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "1", "memory": "1Gi"})
    """Resources reserved for the worker."""
    limits: dict[str, str] = Field(default_factory=lambda: {"memory": "2Gi"})
    """Resource ceilings of the worker."""


def _key_rule(provider: str, variable: str) -> tuple[str, str]:
    uses = " || ".join(
        f"self.pipeline.{stage}.exists(p, p.provider == '{provider}')"
        for stage in ("stt", "llm", "tts")
    )
    return (
        f"!({uses}) || (has(self.env) && self.env.exists(e, e.name == '{variable}'))",
        f"provider {provider} needs {variable} in env "
        "(valueFrom.secretKeyRef to the Secret holding the key)",
    )


UNIQUE_REGIONS = (
    "self.regions.all(a, self.regions.exists_one(b, a.name == b.name))",
    "region names must be unique",
)


class VoiceAgentSpec(Model):
    """A fleet of LiveKit voice agent workers, one Deployment per region."""

    model_config = ConfigDict(
        **Model.model_config,
        json_schema_extra=cel(*(_key_rule(p, v) for p, v in PROVIDER_KEYS.items()), UNIQUE_REGIONS),
    )

    image: str = Field(min_length=1)
    """Agent worker container image."""
    image_pull_policy: str = Field(default="IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$")
    """When the kubelet pulls the image."""
    agent_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """LiveKit explicit-dispatch name; defaults to metadata.name."""
    instructions: str = "You are a helpful voice assistant. Keep answers short."
    """System instructions for the LLM."""
    pipeline: PipelineSpec
    """The voice pipeline."""
    env: list[EnvVar] = Field(default_factory=list)
    """Environment of the worker containers; provider keys come from Secrets."""
    regions: list[RegionSpec] = Field(min_length=1, max_length=20)
    """Regions, each with its LiveKit server and worker fleet."""
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    """Autoscaling on LiveKit load."""
    drain_timeout_seconds: int = Field(default=1800, ge=0, le=86400)
    """On rollout or scale-down, how long a worker may finish its calls before it is stopped."""
    remote_session: bool = False
    """Let room participants drive and observe each session over the framework's remote-session
    protocol (topic lk.agent.session): read the instructions and chat history, send text turns,
    switch the agent's audio off. Off by default, since callers are untrusted; turn it on only
    where every participant is trusted, such as a test harness that drives the agent."""
    call: CallSpec = Field(default_factory=CallSpec)
    """Limits that end a call: its longest duration and the silence that ends it. Each call
    costs provider usage and holds a worker session, so neither is unlimited."""
    resources: Resources = Field(default_factory=Resources)
    """Compute resources of each worker."""
    observability: ObservabilitySpec = Field(default_factory=ObservabilitySpec)
    """Metrics and traces."""
    slo: SLOSpec = Field(default_factory=SLOSpec)
    """Service level objectives."""

    @model_validator(mode="after")
    def _cross_checks(self) -> VoiceAgentSpec:
        names = [r.name for r in self.regions]
        if len(names) != len(set(names)):
            raise ValueError("region names must be unique")
        env = {e.name for e in self.env}
        for provider in sorted(self.pipeline.cloud_providers()):
            variable = PROVIDER_KEYS[provider]
            if variable not in env:
                raise ValueError(f"provider {provider} needs {variable} in env")
        return self

    def agent_config(self, name: str, region: RegionSpec) -> AgentConfig:
        """The worker configuration rendered for one region."""
        return AgentConfig(
            agent_name=self.agent_name or name,
            instructions=self.instructions,
            pipeline=self.pipeline,
            region=region.name,
            sessions_per_worker=self.scaling.sessions_per_worker,
            drain_timeout_seconds=self.drain_timeout_seconds,
            remote_session=self.remote_session,
            call=self.call,
            observability=self.observability,
        )


class Condition(Model):
    """An observation of the VoiceAgent's state, as in the Kubernetes API conventions."""

    type: str
    """Ready, LiveKitReachable, Scaling or Degraded."""
    status: str = Field(pattern=r"^(True|False|Unknown)$")
    """True, False or Unknown."""
    reason: str
    """One CamelCase word saying why."""
    message: str = ""
    """What a person should know."""
    last_transition_time: str
    """When status last changed (RFC 3339)."""
    observed_generation: int = 0
    """metadata.generation this condition was computed from."""


class RegionStatus(Model):
    """The observed fleet of one region."""

    name: str
    """Region name."""
    replicas: int = 0
    """Worker pods that exist."""
    ready_replicas: int = 0
    """Worker pods ready to take calls."""
    desired_replicas: int = 0
    """Workers the autoscaler wants."""
    active_sessions: int = 0
    """Sessions LiveKit reports for this agent."""
    capacity: int = 0
    """sessionsPerWorker times ready workers."""
    last_scale_time: str | None = None
    """When desiredReplicas last changed (RFC 3339)."""
    last_scale_reason: str | None = None
    """Why desiredReplicas last changed."""


class VoiceAgentStatus(Model):
    """What the operator observed; written only by the operator."""

    observed_generation: int = 0
    """metadata.generation last reconciled."""
    agent_name: str = ""
    """Resolved LiveKit dispatch name."""
    regions: list[RegionStatus] = Field(default_factory=list)
    """Per-region fleet."""
    region_count: int = 0
    """Number of regions in the spec."""
    active_sessions: int = 0
    """Sessions across all regions."""
    workers: str = "0/0"
    """Ready/desired workers across all regions."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready, LiveKitReachable, Scaling and Degraded."""
