"""Settings shared by the rules, the alerts and the dashboards."""

from __future__ import annotations

# Runbooks live in the repository; an alert's runbook_url is this plus "/<AlertName>.md".
RUNBOOK_BASE_URL = "https://github.com/voicefleet/voicefleet/blob/main/docs/runbooks"

# Selects the operator's scrape target in `up`. The Helm chart's Service is named
# "<release>-operator" and a ServiceMonitor uses the Service name as job; change this when the
# release has another name or the scrape config names the job differently.
OPERATOR_JOB_SELECTOR = 'job="voicefleet-operator"'

# Defaults of a VoiceAgent's spec.slo; the fleet-wide rules apply them to every agent that has
# no PrometheusRule of its own.
DEFAULT_VOICE_TO_VOICE_SECONDS = 1.5
DEFAULT_VOICE_TO_VOICE_OBJECTIVE = 0.95
DEFAULT_SESSION_SUCCESS_OBJECTIVE = 0.999

# Operational alert thresholds.
CAPACITY_IN_USE_ALERT = 1.0
"""Share of capacity (sessionsPerWorker × ready workers) in use that counts as full."""
DEMAND_RISING_WINDOW = "15m"
"""Demand is rising when it is higher now than this long ago."""
PROVIDER_ERRORS_PER_TURN_ALERT = 0.05
"""Failed provider requests per answered turn, per stage and provider."""
TOOL_ERRORS_PER_CALL_ALERT = 0.1
"""Share of a tool's calls that fail (timeout, error status, oversize, unreachable)."""

# Recording rules are evaluated over this window; dashboards reuse them for percentiles.
RATE_WINDOW = "5m"
