{{/* The chart's name, overridable. */}}
{{- define "clo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-qualified name of every namespaced object. */}}
{{- define "clo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "clo.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "clo.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding): unique per release
namespace. When full name and namespace exceed 63 characters, a hash of the namespace stands
for it, so two namespaces never share the name. */}}
{{- define "clo.clusterName" -}}
{{- $name := printf "%s-%s" (include "clo.fullname" .) .Release.Namespace }}
{{- if gt (len $name) 63 }}
{{- $name = printf "%s-%s" (include "clo.fullname" . | trunc 54 | trimSuffix "-") (sha256sum .Release.Namespace | trunc 8) }}
{{- end }}
{{- $name }}
{{- end }}

{{- define "clo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "clo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "clo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: checkout-link-operator
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "clo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "clo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image, tag defaulting to the chart's appVersion. */}}
{{- define "clo.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The default credentials Secret as namespace/name, or nothing. */}}
{{- define "clo.credentialsSecret" -}}
{{- $c := .Values.credentials }}
{{- if and $c.create $c.existingSecret }}
{{- fail "credentials: set either credentials.create (with credentials.token) or credentials.existingSecret, not both" }}
{{- else if $c.create }}
{{- printf "%s/%s-credentials" .Release.Namespace (include "clo.fullname" .) }}
{{- else if contains "/" $c.existingSecret }}
{{- $c.existingSecret }}
{{- else if $c.existingSecret }}
{{- printf "%s/%s" .Release.Namespace $c.existingSecret }}
{{- end }}
{{- end }}

{{/* The metrics Service is rendered when asked for, and for the ServiceMonitor. */}}
{{- define "clo.metricsService" -}}
{{- if or .Values.metrics.service.enabled .Values.metrics.serviceMonitor.enabled }}true{{ end }}
{{- end }}

{{/* Labels and annotations added to the CRD and the admission policy (a metadata block body). */}}
{{- define "clo.crdMetadata" -}}
labels:
  {{- include "clo.labels" . | nindent 2 }}
{{- if .Values.crds.keep }}
annotations:
  helm.sh/resource-policy: keep
{{- end }}
{{- end }}
