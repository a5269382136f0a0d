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
tests/delivery/test_least_privilege.py fails when a rule is not used, read from the API
server's audit log of the operator's requests.
*/}}
{{- define "voicefleet.rules" -}}
# VoiceAgents are watched, never read one by one; while a reconcile is retried, kopf keeps its
# retry count in their annotations.
- apiGroups: [voicefleet.io]
  resources: [voiceagents]
  verbs: [list, watch, patch]
- apiGroups: [voicefleet.io]
  resources: [voiceagents/status]
  verbs: [patch]
# A region's Deployment, ConfigMaps (configuration, prices), headless Service and
# PodDisruptionBudget: applied, listed to prune, deleted. Only Deployments are watched.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [list, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, create, patch, delete]
# Workers are annotated with their pod-deletion-cost so idle ones are removed first.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, patch]
# LiveKit credentials: only the Secret a VoiceAgent region names, read by name (docs/install.md).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# The operator's decisions: an Event repeated counts up (series), read back once by a new
# leader that finds it written already.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, get, patch]
{{- if .Values.networkPolicy.enabled }}
# Each region's NetworkPolicy for its workers: applied, listed to prune, deleted.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, create, patch, delete]
{{- end }}
# A PrometheusRule per VoiceAgent from its spec.slo, when the Prometheus Operator is present.
- apiGroups: [monitoring.coreos.com]
  resources: [prometheusrules]
  verbs: [create, patch]
{{- end -}}

{{/*
The pricing values as recording rules: one voicefleet:unit_price:configured series per provider,
model and unit, priced per single unit (token, audio second, character, conversation second).
A provider and model priced twice for one stage fails the install: the cost rules could not
tell which price to use.
*/}}
{{- define "voicefleet.priceRule" -}}
- record: voicefleet:unit_price:configured
  expr: vector({{ index . 0 }} / {{ index . 1 }})
  labels: {{ index . 2 | toJson }}
{{- end -}}

{{- define "voicefleet.priceRules" -}}
{{- $pricing := .Values.pricing -}}
{{- $seen := dict -}}
{{- range $stage := list "llm" "stt" "tts" }}
{{- range (index $pricing $stage | default list) }}
{{- $key := printf "%s %s/%s" $stage .provider .model }}
{{- if hasKey $seen $key }}
{{- fail (printf "pricing.%s prices %s/%s twice: keep one entry per provider and model" $stage .provider .model) }}
{{- end }}
{{- $_ := set $seen $key true }}
{{- $labels := dict "provider" .provider "model" .model "currency" $pricing.currency }}
{{- if eq $stage "llm" }}
{{- include "voicefleet.priceRule" (list .promptPer1kTokens 1000 (merge (dict "unit" "llm_token" "kind" "prompt") $labels)) | nindent 0 }}
{{- include "voicefleet.priceRule" (list .completionPer1kTokens 1000 (merge (dict "unit" "llm_token" "kind" "completion") $labels)) | nindent 0 }}
{{- else if eq $stage "stt" }}
{{- include "voicefleet.priceRule" (list .perMinute 60 (merge (dict "unit" "stt_audio_second") $labels)) | nindent 0 }}
{{- else }}
{{- include "voicefleet.priceRule" (list .per1MCharacters 1000000 (merge (dict "unit" "tts_character") $labels)) | nindent 0 }}
{{- end }}
{{- end }}
{{- end }}
{{- with $pricing.agentMinute }}
{{- include "voicefleet.priceRule" (list . 60 (dict "unit" "conversation_second" "currency" $pricing.currency)) | nindent 0 }}
{{- end }}
{{- end -}}

{{/* The voicefleet-prices rule group, when any price is set. */}}
{{- define "voicefleet.priceGroup" -}}
{{- with include "voicefleet.priceRules" . | trim -}}
- name: voicefleet-prices
  rules:
  {{- . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* An egress rule to (cidrs, ports) of the networkPolicy values: any address when no cidrs. */}}
{{- define "voicefleet.egressTo" -}}
- ports:
  {{- range .ports }}
    - {protocol: TCP, port: {{ . }}}
  {{- end }}
  {{- with .cidrs }}
  to:
    {{- range . }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  {{- end }}
{{- end -}}
