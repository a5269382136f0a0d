"""The VoiceAgent resource, defined once.

The CRD schema (manifests/ and the chart), the configuration reference in docs/ and the agent's
config parser all come from these models. Validation that the API server must enforce is
expressed here too: field constraints become OpenAPI bounds and patterns, and rules across
fields become CEL `x-kubernetes-validations` with a message a person understands.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from voicefleet_models.agent_config import (
    LATENCY_BUCKETS,
    OPENAI_KEY,
    PROVIDER_KEYS,
    AgentCodeSpec,
    AgentConfig,
    CallSpec,
    ObservabilitySpec,
    PipelineSpec,
    Ratio,
    missing_keys,
)
from voicefleet_models.base import Model
from voicefleet_models.quantity import QUANTITY, quantity
from voicefleet_models.tool_spec import MAX_TOOLS, UNIQUE_TOOLS, ToolSpec, check_unique_names

GROUP = "voicefleet.io"
VERSION = "v1alpha1"
KIND = "VoiceAgent"
PLURAL = "voiceagents"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
Window = Annotated[int, Field(ge=0, le=3600)]
# Annotations the operator keeps on each worker pod from its active sessions
# (voicefleet_operator.worker_load): its ReplicaSet deletes idle workers first, and node
# autoscalers (cluster-autoscaler and Karpenter) leave a busy one alone.
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


def cel(*rules: tuple[str, str]) -> JsonDict:
    """CEL validation rules (rule, message) for the CRD schema."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


# Labels the operator puts on every worker pod and selects them by; a VoiceAgent cannot set them.
OPERATOR_LABEL_PREFIX = "voicefleet.io/"
OPERATOR_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
)
# Annotations the operator keeps in line with each worker's load (see worker_load).
OPERATOR_ANNOTATIONS = (DELETION_COST, SAFE_TO_EVICT, DO_NOT_DISRUPT)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
MAX_POD_METADATA = 64
RESERVED_LABELS = (
    f"self.all(k, !k.startsWith('{OPERATOR_LABEL_PREFIX}') && "
    f"!(k in [{', '.join(repr(k) for k in OPERATOR_LABELS)}]))",
    f"podLabels may not set {OPERATOR_LABEL_PREFIX}* or {', '.join(OPERATOR_LABELS)}: "
    "the operator sets them and selects its workers by them",
)
RESERVED_ANNOTATIONS = (
    f"self.all(k, !(k in [{', '.join(repr(k) for k in OPERATOR_ANNOTATIONS)}]))",
    f"podAnnotations may not set {', '.join(OPERATOR_ANNOTATIONS)}: "
    "the operator sets them from each worker's active sessions",
)
PRESERVE_UNKNOWN: JsonDict = {"x-kubernetes-preserve-unknown-fields": True}
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]


class LocalObjectReference(Model):
    """An object in the VoiceAgent's namespace, by name."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN)
    """Object name."""


class Toleration(Model):
    """A taint the workers tolerate (as core/v1 Toleration)."""

    model_config = ConfigDict(
        **Model.model_config,
        json_schema_extra=cel(
            (
                "has(self.key) || self.operator == 'Exists'",
                "a toleration without a key must use operator Exists",
            ),
            (
                "self.operator != 'Exists' || !has(self.value)",
                "a toleration with operator Exists takes no value",
            ),
            (
                "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                "tolerationSeconds needs effect NoExecute",
            ),
        ),
    )

    key: str | None = Field(default=None, max_length=316)
    """Taint key; none with operator Exists tolerates every taint."""
    operator: Literal["Exists", "Equal"] = "Equal"
    """Equal matches the taint's value; Exists matches any value."""
    value: str | None = Field(default=None, max_length=63)
    """Taint value, with operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to tolerate; none tolerates every effect."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """With effect NoExecute: how long a worker stays on a node after the taint appears. A
    worker evicted this way cuts its calls."""


class LabelSelectorRequirement(Model):
    """One expression of a label selector."""

    model_config = ConfigDict(
        **Model.model_config,
        json_schema_extra=cel(
            (
                "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
                "operators In and NotIn need values; Exists and DoesNotExist take none",
            )
        ),
    )

    key: str = Field(min_length=1, max_length=316)
    """Label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the label's value is matched."""
    values: list[Annotated[str, Field(max_length=63)]] = Field(default_factory=list, max_length=64)
    """Values for In and NotIn."""


class LabelSelector(Model):
    """Pods by label (as meta/v1 LabelSelector)."""

    match_labels: dict[str, LabelValue] = Field(default_factory=dict, max_length=MAX_POD_METADATA)
    """Labels a pod must have, with these values."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=16)
    """Expressions a pod's labels must satisfy."""


class TopologySpreadConstraint(Model):
    """How the workers spread across zones or nodes (as core/v1 TopologySpreadConstraint)."""

    model_config = ConfigDict(
        **Model.model_config,
        json_schema_extra=cel(
            (
                "!has(self.minDomains) || self.whenUnsatisfiable == 'DoNotSchedule'",
                "minDomains needs whenUnsatisfiable DoNotSchedule",
            )
        ),
    )

    max_skew: int = Field(ge=1)
    """Most the number of workers may differ between two domains."""
    topology_key: str = Field(min_length=1, max_length=316)
    """Node label whose values are the domains, e.g. topology.kubernetes.io/zone."""
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    """DoNotSchedule keeps a worker pending rather than skew more; ScheduleAnyway only
    prefers the spread."""
    label_selector: LabelSelector | None = None
    """Pods counted in each domain; defaults to the workers of the same region."""
    match_label_keys: list[Annotated[str, Field(max_length=316)]] = Field(
        default_factory=list, max_length=16
    )
    """Pod label keys whose values narrow the pods counted to those of the same value, e.g.
    pod-template-hash to spread each rollout's workers on their own."""
    min_domains: int | None = Field(default=None, ge=1)
    """Fewest eligible domains, with DoNotSchedule."""
    node_affinity_policy: Literal["Honor", "Ignore"] | None = None
    """Whether the workers' nodeSelector and node affinity limit the domains counted."""
    node_taints_policy: Literal["Honor", "Ignore"] | None = None
    """Whether node taints the workers do not tolerate limit the domains counted."""


class Affinity(Model):
    """Scheduling affinity of the workers (as core/v1 Affinity). The inner schemas are kept
    open on purpose: Kubernetes' own runs to dozens of types and gains fields between
    releases, so a copy here would reject what a newer cluster accepts. The API server checks
    them when the operator applies the Deployment, and a mistake shows as a failed, retried
    reconcile (a Warning Event) while the running workers stay as they were."""

    node_affinity: dict[str, Any] | None = Field(default=None, json_schema_extra=PRESERVE_UNKNOWN)
    """Nodes the workers must or should run on (core/v1 NodeAffinity)."""
    pod_affinity: dict[str, Any] | None = Field(default=None, json_schema_extra=PRESERVE_UNKNOWN)
    """Pods the workers must or should run near (core/v1 PodAffinity)."""
    pod_anti_affinity: dict[str, Any] | None = Field(
        default=None, json_schema_extra=PRESERVE_UNKNOWN
    )
    """Pods the workers must or should run apart from (core/v1 PodAntiAffinity)."""


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
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Taints of this region's node pool the workers tolerate, on top of the VoiceAgent's."""

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


class ConfigMapKeyRef(Model):
    """A key of a ConfigMap in the VoiceAgent's namespace."""

    name: str
    """ConfigMap name."""
    key: str
    """Key in the ConfigMap."""
    optional: bool | None = None
    """Whether the key may be absent."""


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


Quantity = Annotated[str, Field(max_length=64, pattern=QUANTITY)]
REQUESTS_WITHIN_LIMITS = (
    "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || "
    "quantity(self.requests[k]).compareTo(quantity(self.limits[k])) <= 0)",
    "each resources.requests value must be less than or equal to its resources.limits value",
)


class Resources(Model):
    """Compute resources of one worker container (as core/v1 ResourceRequirements). A cpu or
    memory request left out is sized from scaling.sessionsPerWorker and the measured cost of a
    session (docs/production.md), never above its limit; a memory limit left out is twice the
    memory request. No cpu limit by default: throttling a worker delays every call's audio."""

    model_config = ConfigDict(**Model.model_config, json_schema_extra=cel(REQUESTS_WITHIN_LIMITS))

    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Resources reserved for the worker, e.g. cpu: 1500m, memory: 1Gi."""
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Resource ceilings of the worker."""

    @model_validator(mode="after")
    def _within_limits(self) -> Resources:
        for name, request in self.requests.items():
            if name in self.limits and quantity(request) > quantity(self.limits[name]):
                raise ValueError(REQUESTS_WITHIN_LIMITS[1])
        return self


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


# api.openai.com needs a key; a self-hosted OpenAI-compatible server (baseUrl) may not.
OPENAI_KEY_RULE = (
    "!self.pipeline.llm.exists(p, p.provider == 'openai' && !has(p.baseUrl)) || "
    f"(has(self.env) && self.env.exists(e, e.name == '{OPENAI_KEY}'))",
    f"provider openai needs {OPENAI_KEY} in env (valueFrom.secretKeyRef to the Secret holding "
    "the key), unless baseUrl names a server that needs none",
)
UNIQUE_REGIONS = (
    "self.regions.all(a, self.regions.exists_one(b, a.name == b.name))",
    "region names must be unique",
)
# Checked by the operator and the worker: as a CEL rule (tools × headers × env) it would exceed
# the API server's cost budget.
HEADERS_FROM_ENV = (
    "every tool header's fromEnv must name a variable in env "
    "(valueFrom.secretKeyRef to the Secret holding the value)"
)


class VoiceAgentSpec(Model):
    """A fleet of LiveKit voice agent workers, one Deployment per region."""

    model_config = ConfigDict(
        **Model.model_config,
        json_schema_extra=cel(
            *(_key_rule(p, v) for p, v in PROVIDER_KEYS.items()),
            OPENAI_KEY_RULE,
            UNIQUE_REGIONS,
            UNIQUE_TOOLS,
        ),
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
    tools: list[ToolSpec] = Field(default_factory=list, max_length=MAX_TOOLS)
    """HTTP endpoints the LLM may call as functions during a call. Each call is bounded by its
    timeout and response size, metered, traced, and on failure the agent says its failureLine
    and the call goes on."""
    agent: AgentCodeSpec = Field(default_factory=AgentCodeSpec)
    """Your own agent code in the worker image (an image built FROM the agent image): a
    function that builds each call's livekit-agents Agent."""
    resources: Resources = Field(default_factory=Resources)
    """Compute resources of each worker; requests default to the measured cost of
    sessionsPerWorker sessions."""
    service_account_name: str | None = Field(default=None, max_length=253, pattern=DNS_SUBDOMAIN)
    """ServiceAccount the workers run as (e.g. for workload identity); the namespace's
    default one if unset."""
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list, max_length=16)
    """Secrets with credentials for a private registry holding the image."""
    priority_class_name: str | None = Field(default=None, max_length=253, pattern=DNS_SUBDOMAIN)
    """PriorityClass of the workers, so a busy node evicts other pods before a live call."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Taints the workers tolerate in every region; a region adds its own."""
    affinity: Affinity | None = None
    """Node and pod affinity of the workers in every region."""
    topology_spread_constraints: list[TopologySpreadConstraint] = Field(
        default_factory=list, max_length=16
    )
    """How each region's workers spread across zones or nodes, so one zone's outage cuts only
    its share of the calls."""
    pod_labels: dict[str, LabelValue] = Field(
        default_factory=dict, max_length=MAX_POD_METADATA, json_schema_extra=cel(RESERVED_LABELS)
    )
    """Extra labels of the worker pods (cost allocation, policy selectors)."""
    pod_annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=MAX_POD_METADATA,
        json_schema_extra=cel(RESERVED_ANNOTATIONS),
    )
    """Extra annotations of the worker pods (service mesh, log shipping)."""

    @field_validator("pod_labels")
    @classmethod
    def _own_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if any(k.startswith(OPERATOR_LABEL_PREFIX) or k in OPERATOR_LABELS for k in labels):
            raise ValueError(RESERVED_LABELS[1])
        return labels

    @field_validator("pod_annotations")
    @classmethod
    def _own_annotations(cls, annotations: dict[str, str]) -> dict[str, str]:
        if any(k in OPERATOR_ANNOTATIONS for k in annotations):
            raise ValueError(RESERVED_ANNOTATIONS[1])
        return annotations

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
        for key in missing_keys(self.pipeline, dict.fromkeys(env, "set")):
            raise ValueError(f"provider {key.provider} needs {key.variable} in env")
        check_unique_names(self.tools)
        for tool in self.tools:
            for header in tool.http.headers:
                if header.from_env not in env:
                    raise ValueError(f"{HEADERS_FROM_ENV}: {header.from_env} is not")
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
            tools=self.tools,
            agent=self.agent,
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
    scale_down_floor: int | None = None
    """Workers the scale-down stabilization window holds until scaleDownFloorExpiry."""
    scale_down_floor_expiry: str | None = None
    """When the window's floor stops holding (RFC 3339): an operator that restarts keeps it."""


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
