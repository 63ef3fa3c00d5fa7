{{/* Names and labels. */}}
{{- define "dzconnect.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dzconnect.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dzconnect.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dzconnect.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dzconnect.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dzconnect.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dzconnect
{{- end -}}

{{- define "dzconnect.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dzconnect.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dzconnect.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* httpScheme: HTTPS when dzconnect serves TLS itself. */}}
{{- define "dzconnect.httpScheme" -}}
{{- if .Values.tls.existingSecret -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/*
dzconnect.validate fails the render on settings dzconnect would refuse at start-up,
or that would put a secret into the chart's values.
*/}}
{{- define "dzconnect.validate" -}}
{{- if and (not .Values.tls.existingSecret) (not .Values.allowPlaintext) -}}
{{- fail "set tls.existingSecret (a kubernetes.io/tls Secret), or allowPlaintext=true when TLS is terminated in front of dzconnect: API keys travel in every request" -}}
{{- end -}}
{{- if and .Values.tls.existingSecret .Values.allowPlaintext -}}
{{- fail "set tls.existingSecret or allowPlaintext, not both" -}}
{{- end -}}
{{- if not .Values.database.existingSecret -}}
{{- fail "database.existingSecret is required: a Secret holding the Postgres URL" -}}
{{- end -}}
{{- if not .Values.vault.address -}}
{{- fail "vault.address is required, e.g. https://vault.vault.svc:8200" -}}
{{- end -}}
{{- if not (has .Values.vault.auth.method (list "approle" "token")) -}}
{{- fail "vault.auth.method must be approle or token" -}}
{{- end -}}
{{- if not .Values.vault.auth.existingSecret -}}
{{- fail "vault.auth.existingSecret is required: a Secret with the AppRole role and secret ID, or the token" -}}
{{- end -}}
{{- if and .Values.vault.ca.secretName .Values.vault.ca.configMapName -}}
{{- fail "vault.ca: set secretName or configMapName, not both" -}}
{{- end -}}
{{- range $name, $_ := .Values.env -}}
{{- if has $name (list "DZCONNECT_DATABASE_URL" "DZCONNECT_VAULT_TOKEN" "DZCONNECT_VAULT_SECRET_ID" "DZCONNECT_VAULT_ROLE_ID" "DZCONNECT_ADMIN_KEY") -}}
{{- fail (printf "env.%s: secrets come only from Kubernetes Secrets (database.existingSecret, vault.auth.existingSecret, adminKey.existingSecret), never from values" $name) -}}
{{- end -}}
{{- if not (hasPrefix "DZCONNECT_" $name) -}}
{{- fail (printf "env.%s: only DZCONNECT_* settings belong in env; use extraEnv for others" $name) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.probes.port "metrics") (not .Values.internalListener.enabled) -}}
{{- fail "probes.port=metrics needs internalListener.enabled" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.internalListener.enabled) -}}
{{- fail "metrics.serviceMonitor needs internalListener.enabled: /metrics is scraped on the internal listener" -}}
{{- end -}}
{{- end -}}

{{/*
dzconnect.env: the environment shared by the server and the migration Job: the
database, Vault and its credentials (secrets only through secretKeyRef), the Vault CA.
*/}}
{{- define "dzconnect.env" -}}
- name: DZCONNECT_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.database.existingSecret | quote }}, key: {{ .Values.database.urlKey | quote }}}
- name: DZCONNECT_DATABASE_MAX_CONNS
  value: {{ .Values.database.maxConns | quote }}
- name: DZCONNECT_DATABASE_MIN_CONNS
  value: {{ .Values.database.minConns | quote }}
- name: DZCONNECT_VAULT_ADDR
  value: {{ .Values.vault.address | quote }}
- name: DZCONNECT_VAULT_MOUNT
  value: {{ .Values.vault.mount | quote }}
- name: DZCONNECT_VAULT_PREFIX
  value: {{ .Values.vault.prefix | quote }}
{{- if .Values.vault.timeout }}
- name: DZCONNECT_VAULT_TIMEOUT
  value: {{ .Values.vault.timeout | quote }}
{{- end }}
{{- if eq .Values.vault.auth.method "approle" }}
- name: DZCONNECT_VAULT_APPROLE_MOUNT
  value: {{ .Values.vault.auth.approleMount | quote }}
- name: DZCONNECT_VAULT_ROLE_ID
  valueFrom:
    secretKeyRef: {name: {{ .Values.vault.auth.existingSecret | quote }}, key: {{ .Values.vault.auth.roleIdKey | quote }}}
- name: DZCONNECT_VAULT_SECRET_ID
  valueFrom:
    secretKeyRef: {name: {{ .Values.vault.auth.existingSecret | quote }}, key: {{ .Values.vault.auth.secretIdKey | quote }}}
{{- else }}
- name: DZCONNECT_VAULT_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.vault.auth.existingSecret | quote }}, key: {{ .Values.vault.auth.tokenKey | quote }}}
{{- end }}
{{- if or .Values.vault.ca.secretName .Values.vault.ca.configMapName }}
- name: DZCONNECT_VAULT_CA_CERT
  value: {{ printf "/etc/dzconnect/vault-ca/%s" .Values.vault.ca.key | quote }}
{{- end }}
{{- end -}}

{{/* dzconnect.vaultCAVolume: the Vault CA volume, when configured. */}}
{{- define "dzconnect.vaultCAVolume" -}}
{{- if .Values.vault.ca.secretName }}
- name: vault-ca
  secret:
    secretName: {{ .Values.vault.ca.secretName | quote }}
    items: [{key: {{ .Values.vault.ca.key | quote }}, path: {{ .Values.vault.ca.key | quote }}}]
{{- else if .Values.vault.ca.configMapName }}
- name: vault-ca
  configMap:
    name: {{ .Values.vault.ca.configMapName | quote }}
    items: [{key: {{ .Values.vault.ca.key | quote }}, path: {{ .Values.vault.ca.key | quote }}}]
{{- end }}
{{- end -}}

{{- define "dzconnect.vaultCAMount" -}}
{{- if or .Values.vault.ca.secretName .Values.vault.ca.configMapName }}
- name: vault-ca
  mountPath: /etc/dzconnect/vault-ca
  readOnly: true
{{- end }}
{{- end -}}
