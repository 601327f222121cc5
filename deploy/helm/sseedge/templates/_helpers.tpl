{{/* Names and labels. */}}
{{- define "sseedge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sseedge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sseedge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sseedge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sseedge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sseedge.labels" -}}
helm.sh/chart: {{ include "sseedge.chart" . }}
{{ include "sseedge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sseedge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sseedge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sseedge.secretName" -}}
{{- default (include "sseedge.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/*
The Secret key Prometheus sends on GET /metrics. The edge always runs with ADMIN_TOKEN and TOKEN_SECRET,
and then /metrics takes METRICS_TOKEN, or the admin token when there is none: the chart's Secret always
has METRICS_TOKEN; an existing Secret without it leaves only ADMIN_TOKEN.
*/}}
{{- define "sseedge.metricsTokenKey" -}}
{{- if and .Values.auth.existingSecret (not .Values.auth.existingSecretHasMetricsToken) }}ADMIN_TOKEN{{ else }}METRICS_TOKEN{{ end }}
{{- end }}

{{/*
Checks that fail the render with a message instead of a cluster that misbehaves.
*/}}
{{- define "sseedge.validate" -}}
{{- $mode := .Values.redis.mode | default "" }}
{{- if not (has $mode (list "" "standalone" "cluster" "sentinel")) }}
{{- fail (printf "redis.mode %q: use \"\" (memory), standalone, cluster or sentinel" $mode) }}
{{- end }}
{{- if eq $mode "" }}
{{- if or .Values.autoscaling.enabled (gt (int (include "sseedge.replicas" .)) 1) }}
{{- fail "more than one pod needs Redis (redis.mode): without it each pod keeps its own topics, history and registry, and a client reconnecting to another pod misses events" }}
{{- end }}
{{- end }}
{{- if and (eq $mode "standalone") (not .Values.redis.addr) }}
{{- fail "redis.mode standalone needs redis.addr" }}
{{- end }}
{{- if and (eq $mode "cluster") (not .Values.redis.addrs) }}
{{- fail "redis.mode cluster needs redis.addrs (the seed nodes)" }}
{{- end }}
{{- if and (eq $mode "sentinel") (or (not .Values.redis.sentinel.addrs) (not .Values.redis.sentinel.master)) }}
{{- fail "redis.mode sentinel needs redis.sentinel.addrs and redis.sentinel.master" }}
{{- end }}
{{- range (concat (list .Values.redis.addr) .Values.redis.addrs) }}
{{- if regexMatch "^[a-z]+://[^/@]*:[^/@]*@" (toString .) }}
{{- fail "a Redis URL with a password would land in a ConfigMap: put the password in redis.password (and the user in redis.username)" }}
{{- end }}
{{- end }}
{{- if and .Values.redis.tls.certKey (not .Values.redis.tls.keyKey) }}
{{- fail "redis.tls.certKey needs redis.tls.keyKey (the client key of mutual TLS)" }}
{{- end }}
{{- if and (or .Values.redis.tls.certKey .Values.redis.tls.keyKey) (not .Values.redis.tls.existingSecret) }}
{{- fail "redis.tls.certKey and keyKey name keys of redis.tls.existingSecret: set it" }}
{{- end }}
{{- range $k, $v := .Values.config }}
{{- $own := list "PORT" "HOST" "NODE_ID" "DRAIN_TIMEOUT" "ADMIN_TOKEN" "TOKEN_SECRET" "METRICS_TOKEN" "REDIS_ADDR" "REDIS_PASSWORD" "REDIS_USERNAME" }}
{{- if or (has $k $own) (hasPrefix "REDIS_TLS_" $k) (hasPrefix "REDIS_SENTINEL_" $k) }}
{{- fail (printf "config.%s is set by the chart: use the chart's own value for it (docs/kubernetes.md)" $k) }}
{{- end }}
{{- if not (regexMatch "^[A-Z][A-Z0-9_]*$" $k) }}
{{- fail (printf "config.%s: keys are environment variable names such as HEARTBEAT_INTERVAL" $k) }}
{{- end }}
{{- end }}
{{- range $k, $v := .Values.tuning.nodeSysctls.values }}
{{- if hasPrefix "net." $k }}
{{- fail (printf "tuning.nodeSysctls.values.%s: net.* sysctls belong to the pod's network namespace (tuning.sysctls); net.ipv4.tcp_mem is set on the node" $k) }}
{{- end }}
{{- end }}
{{- if lt (int .Values.drain.extraGraceSeconds) 1 }}
{{- fail "drain.extraGraceSeconds must be at least 1: the grace period must outlast preStop and DRAIN_TIMEOUT" }}
{{- end }}
{{- end }}

{{/* Replicas: the value, or 1 in memory and 3 with Redis. */}}
{{- define "sseedge.replicas" -}}
{{- if kindIs "invalid" .Values.replicaCount }}
{{- if .Values.redis.mode }}3{{ else }}1{{ end }}
{{- else }}
{{- int .Values.replicaCount }}
{{- end }}
{{- end }}

{{/* Memory request in MiB from the streams a pod is sized for. */}}
{{- define "sseedge.memoryMiB" -}}
{{- $t := .Values.tuning }}
{{- add (int64 $t.baseMemoryMiB) (div (add (mul (int64 $t.streamsPerPod) (int64 $t.bytesPerStream)) 1048575) 1048576) }}
{{- end }}

{{- define "sseedge.resources" -}}
{{- $r := deepCopy (.Values.resources | default dict) }}
{{- $req := $r.requests | default dict }}
{{- $lim := $r.limits | default dict }}
{{- $mib := int64 (include "sseedge.memoryMiB" .) }}
{{- if not $req.memory }}
{{- $_ := set $req "memory" (printf "%dMi" $mib) }}
{{- end }}
{{- if not $lim.memory }}
{{- $_ := set $lim "memory" (printf "%dMi" (mul $mib (int64 .Values.tuning.memoryLimitFactor))) }}
{{- end }}
{{- $_ := set $r "requests" $req }}
{{- $_ := set $r "limits" $lim }}
{{- toYaml $r }}
{{- end }}

{{/* Non-secret settings the chart derives from its values, env name: value. */}}
{{- define "sseedge.redisEnv" -}}
{{- $r := .Values.redis }}
{{- if eq $r.mode "standalone" }}
REDIS_ADDR: {{ $r.addr | quote }}
{{- else if eq $r.mode "cluster" }}
REDIS_ADDR: {{ join "," $r.addrs | quote }}
{{- else if eq $r.mode "sentinel" }}
REDIS_SENTINEL_ADDR: {{ join "," $r.sentinel.addrs | quote }}
REDIS_SENTINEL_MASTER: {{ $r.sentinel.master | quote }}
{{- end }}
{{- if $r.mode }}
{{- if $r.username }}
REDIS_USERNAME: {{ $r.username | quote }}
{{- end }}
{{- if $r.tls.existingSecret }}
{{- if $r.tls.caKey }}
REDIS_TLS_CA_FILE: {{ printf "/etc/sseedge/redis-tls/%s" $r.tls.caKey | quote }}
{{- end }}
{{- if $r.tls.certKey }}
REDIS_TLS_CERT_FILE: {{ printf "/etc/sseedge/redis-tls/%s" $r.tls.certKey | quote }}
REDIS_TLS_KEY_FILE: {{ printf "/etc/sseedge/redis-tls/%s" $r.tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- if $r.tls.serverName }}
REDIS_TLS_SERVER_NAME: {{ $r.tls.serverName | quote }}
{{- end }}
{{- if $r.tls.insecure }}
REDIS_TLS_INSECURE: "true"
{{- end }}
{{- end }}
{{- end }}

{{- define "sseedge.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
