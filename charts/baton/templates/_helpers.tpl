{{/*
Names, labels and the pieces every pod shares.
*/}}

{{/* The chart name, truncated to a DNS label. */}}
{{- define "baton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name. It leaves room for the longest suffix
("-broker-metrics", 15 characters) within a 63-character DNS label.
*/}}
{{- define "baton.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* `name-version` for the helm.sh/chart label. */}}
{{- define "baton.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "baton.labels" -}}
helm.sh/chart: {{ include "baton.chart" . }}
app.kubernetes.io/name: {{ include "baton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: baton
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of a component's resources. Call with (dict "ctx" $ "component" "broker"). */}}
{{- define "baton.componentLabels" -}}
{{ include "baton.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selector labels of a component. Call with (dict "ctx" $ "component" "broker"). */}}
{{- define "baton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "baton.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The ServiceAccount the brokers and workers run as. */}}
{{- define "baton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "baton.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: by digest when one is given, else by tag. */}}
{{- define "baton.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the database URL. */}}
{{- define "baton.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- $_ := required "set database.url or database.existingSecret: Baton needs a Postgres database" .Values.database.url }}
{{- printf "%s-database" (include "baton.fullname" .) }}
{{- end }}
{{- end }}

{{- define "baton.databaseSecretKey" -}}
{{- ternary .Values.database.existingSecretKey "url" (not (empty .Values.database.existingSecret)) }}
{{- end }}

{{/* The Secret and key holding the auth token. */}}
{{- define "baton.authSecretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else }}
{{- $_ := required "auth.enabled needs auth.token or auth.existingSecret" .Values.auth.token }}
{{- printf "%s-auth" (include "baton.fullname" .) }}
{{- end }}
{{- end }}

{{- define "baton.authSecretKey" -}}
{{- ternary .Values.auth.existingSecretKey "token" (not (empty .Values.auth.existingSecret)) }}
{{- end }}

{{/* Where mounted secrets live in every container. */}}
{{- define "baton.authTokenPath" -}}/etc/baton/auth/token{{- end }}
{{- define "baton.tlsDir" -}}/etc/baton/tls{{- end }}
{{- define "baton.workerClientTlsDir" -}}/etc/baton/client-tls{{- end }}

{{/* The TLS Secret; required when TLS is on. */}}
{{- define "baton.tlsSecretName" -}}
{{- required "tls.enabled needs tls.secretName: a Secret with tls.crt, tls.key and ca.crt" .Values.tls.secretName }}
{{- end }}

{{/* The broker address workers dial. */}}
{{- define "baton.brokerUrl" -}}
{{- if .Values.worker.brokerUrl }}
{{- .Values.worker.brokerUrl }}
{{- else }}
{{- printf "%s://%s-broker.%s.svc:%v" (ternary "https" "http" .Values.tls.enabled) (include "baton.fullname" .) .Release.Namespace .Values.broker.service.port }}
{{- end }}
{{- end }}

{{/*
The pod-level security context shared by every pod (brokers, workers, the
migration Job): non-root, RuntimeDefault seccomp.
*/}}
{{- define "baton.podSecurityContext" -}}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The container-level security context shared by every container: read-only
root filesystem, no privilege escalation, no capabilities.
*/}}
{{- define "baton.containerSecurityContext" -}}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The writable /tmp every container gets, as a volume and as a mount. */}}
{{- define "baton.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpDir.medium }}
    medium: {{ . }}
    {{- end }}
    sizeLimit: {{ .Values.tmpDir.sizeLimit }}
{{- end }}

{{- define "baton.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* The auth token volume (one key, as the file `token`). */}}
{{- define "baton.authVolume" -}}
- name: auth
  secret:
    secretName: {{ include "baton.authSecretName" . }}
    defaultMode: 288 # 0440: read by the owner and the pod's fsGroup
    items:
      - key: {{ include "baton.authSecretKey" . }}
        path: token
{{- end }}

{{- define "baton.authVolumeMount" -}}
- name: auth
  mountPath: {{ dir (include "baton.authTokenPath" .) }}
  readOnly: true
{{- end }}

{{/*
The TLS volume. Brokers get the whole Secret (tls.crt, tls.key, ca.crt);
workers only need ca.crt to verify the broker, and never see its key.
Call with (dict "ctx" $ "caOnly" true).
*/}}
{{- define "baton.tlsVolume" -}}
- name: tls
  secret:
    secretName: {{ include "baton.tlsSecretName" .ctx }}
    defaultMode: 288 # 0440: read by the owner and the pod's fsGroup
    {{- if .caOnly }}
    items:
      - key: ca.crt
        path: ca.crt
    {{- end }}
{{- end }}

{{- define "baton.tlsVolumeMount" -}}
- name: tls
  mountPath: {{ include "baton.tlsDir" . }}
  readOnly: true
{{- end }}

{{/*
Scheduling of a component's pods: affinity (or the anti-affinity preset),
topology spread, node selector, tolerations, priority.
Call with (dict "ctx" $ "component" "broker" "values" .Values.broker).
*/}}
{{- define "baton.scheduling" -}}
{{- $values := .values }}
{{- if $values.affinity }}
affinity:
  {{- toYaml $values.affinity | nindent 2 }}
{{- else if eq $values.podAntiAffinity "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "baton.selectorLabels" . | nindent 14 }}
{{- else if eq $values.podAntiAffinity "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "baton.selectorLabels" . | nindent 12 }}
{{- end }}
{{- with $values.topologySpread }}
{{- if .enabled }}
topologySpreadConstraints:
  - maxSkew: {{ .maxSkew }}
    topologyKey: {{ .topologyKey }}
    whenUnsatisfiable: {{ .whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "baton.selectorLabels" $ | nindent 8 }}
{{- end }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* Pod settings shared by brokers and workers: account, image pulls, security. */}}
{{- define "baton.podCommon" -}}
serviceAccountName: {{ include "baton.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with include "baton.podSecurityContext" . | trim }}
{{ . }}
{{- end }}
{{- end }}

{{/*
A probe of the broker's gRPC port: a native Kubernetes gRPC probe of
grpc.health.v1 on plaintext. The kubelet's gRPC probe cannot present a client
certificate and, before Kubernetes 1.37's `mode: TLS`, cannot speak TLS at
all, so with TLS on the probe only checks that the port accepts connections.
Call with (dict "ctx" $ "probe" .Values.broker.livenessProbe).
*/}}
{{- define "baton.grpcProbe" -}}
{{- $port := .ctx.Values.broker.ports.grpc }}
{{- if .ctx.Values.tls.enabled }}
tcpSocket:
  port: {{ $port }}
{{- else }}
grpc:
  port: {{ $port }}
  {{- with .probe.service }}
  service: {{ . | quote }}
  {{- end }}
{{- end }}
initialDelaySeconds: {{ .probe.initialDelaySeconds }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end }}

{{/*
A digest of the Secrets the chart creates, so that pods roll when the
database URL or the token changes. Secrets named by `existingSecret` are not
read (the chart cannot see them); a change there needs a rollout restart.
*/}}
{{- define "baton.secretChecksum" -}}
{{- $database := include (print .Template.BasePath "/database-secret.yaml") . }}
{{- $auth := include (print .Template.BasePath "/auth-secret.yaml") . }}
{{- print $database $auth | sha256sum }}
{{- end }}
