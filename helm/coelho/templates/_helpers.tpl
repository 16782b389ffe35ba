{{/* Names are fixed: one Coelho per namespace (see values.yaml). */}}
{{- define "coelho.fullname" -}}coelho{{- end -}}

{{- define "coelho.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "coelho.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: coelho
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "coelho.selectorLabels" -}}
app.kubernetes.io/name: coelho
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component's objects: common + selector labels. */}}
{{- define "coelho.componentLabels" -}}
{{ include "coelho.labels" .ctx }}
{{ include "coelho.selectorLabels" . }}
{{- end -}}

{{/*
A credential: the given value, else the one already stored in the Secret (kept across
upgrades), else a new random one. (dict "ctx" $ "secret" "coelho-redis" "key" "redis-password"
"given" .Values.secrets.redisPassword)
*/}}
{{- define "coelho.secretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- $stored := "" -}}
{{- if and $existing $existing.data -}}
{{- $stored = index $existing.data .key | default "" | b64dec -}}
{{- end -}}
{{- .given | default $stored | default (randAlphaNum 32) -}}
{{- end -}}

{{- define "coelho.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "coelho.containerSecurityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end -}}

{{/* Environment shared by every Coelho container: the non-secret ConfigMap and the Secret. */}}
{{- define "coelho.envFrom" -}}
- configMapRef:
    name: coelho-env
- secretRef:
    name: coelho-env
{{- end -}}

{{- define "coelho.lakehouseUri" -}}
{{- printf "s3://%s/%s" .Values.lakehouse.bucket .Values.lakehouse.prefix | trimSuffix "/" -}}
{{- end -}}
