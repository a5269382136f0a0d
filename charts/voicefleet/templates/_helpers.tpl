{{- define "voicefleet.name" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "voicefleet.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "voicefleet.name" .) -}}
{{- end -}}

{{- define "voicefleet.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "voicefleet.labels" -}}
app.kubernetes.io/name: voicefleet-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "voicefleet.selector" -}}
app.kubernetes.io/name: voicefleet-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Whether a monitoring object renders: "true" or "". Called with (list setting apiVersion $):
a boolean setting decides; null (or unset) means "when the cluster serves apiVersion".
*/}}
{{- define "voicefleet.monitoringEnabled" -}}
{{- $setting := index . 0 -}}
{{- $root := index . 2 -}}
{{- if kindIs "bool" $setting -}}
{{- if $setting }}true{{ end -}}
{{- else if $root.Capabilities.APIVersions.Has (index . 1) -}}
true
{{- end -}}
{{- end -}}

{{/*
The operator's permissions, shared by the ClusterRole and the per-namespace Roles: exactly the
resources and verbs it uses, no wildcards. Server-side apply is a PATCH that may create.
*/}}
{{- define "voicefleet.rules" -}}
- apiGroups: [voicefleet.io]
  resources: [voiceagents]
  verbs: [get, list, watch, patch]
- apiGroups: [voicefleet.io]
  resources: [voiceagents/status]
  verbs: [patch]
# A region's ConfigMap, Deployment, headless Service and PodDisruptionBudget.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# Workers are annotated with their pod-deletion-cost so idle ones are removed first.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, patch]
# LiveKit credentials named by a VoiceAgent region's credentialsSecret (docs/install.md).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# A PrometheusRule per VoiceAgent from its spec.slo, when the Prometheus Operator is present.
- apiGroups: [monitoring.coreos.com]
  resources: [prometheusrules]
  verbs: [get, list, watch, create, patch, delete]
{{- end -}}
