{{/* vim: set filetype=mustache: */}}

{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "credits-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, with the chart name added unless the release name
already contains it.
*/}}
{{- define "credits-exporter.fullname" -}}
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

{{- define "credits-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "credits-exporter.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "credits-exporter.labels" -}}
helm.sh/chart: {{ include "credits-exporter.chart" . }}
{{ include "credits-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | toString | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "credits-exporter.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels: stable across upgrades. */}}
{{- define "credits-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credits-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "credits-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "credits-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* registry/repository:tag, or @digest when a digest is given. */}}
{{- define "credits-exporter.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the API keys (ours or the existing one). */}}
{{- define "credits-exporter.secretName" -}}
{{- if .Values.existingSecret.name }}
{{- .Values.existingSecret.name }}
{{- else }}
{{- include "credits-exporter.fullname" . }}
{{- end }}
{{- end }}

{{/*
The API key files: one item per account that reads its key from the Secret, as YAML
{items: [{key: <key in the Secret>, path: <account name>}]}. Accounts that set their own
api_key_file (mounted through extraVolumes) are left alone. Fails on an api_key in values.config,
on an account without a key, and on apiKeys / existingSecret.keys entries naming no account.
*/}}
{{- define "credits-exporter.secretItems" -}}
{{- $items := list }}
{{- $names := dict }}
{{- range $i, $account := (.Values.config.accounts | default list) }}
{{- if not (kindIs "map" $account) }}
{{- fail (printf "config.accounts[%d]: must be a mapping" $i) }}
{{- end }}
{{- $name := toString ($account.name | default "") }}
{{- if hasKey $account "api_key" }}
{{- fail (printf "config.accounts[%d] (%s): api_key must not be set in the chart's values.config: the config is a ConfigMap, readable by anyone who can read ConfigMaps. Put the key in apiKeys.%s or in existingSecret (the chart mounts it as a file and sets api_key_file)" $i $name $name) }}
{{- end }}
{{- if not (hasKey $account "api_key_file") }}
{{- if not (regexMatch "^[-._a-zA-Z0-9]+$" $name) }}
{{- fail (printf "config.accounts[%d]: name %q cannot name a Secret key or file: use letters, digits, '-', '_' and '.'" $i $name) }}
{{- end }}
{{- $_ := set $names $name true }}
{{- if $.Values.existingSecret.name }}
{{- $key := index ($.Values.existingSecret.keys | default dict) $name | default $name }}
{{- $items = append $items (dict "key" (toString $key) "path" $name) }}
{{- else if hasKey ($.Values.apiKeys | default dict) $name }}
{{- $items = append $items (dict "key" $name "path" $name) }}
{{- else }}
{{- fail (printf "config.accounts[%d] (%s): no API key: set apiKeys.%s, or existingSecret.name (key %q, or existingSecret.keys.%s), or the account's own api_key_file" $i $name $name $name $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if $.Values.existingSecret.name }}
{{- range $name, $_ := ($.Values.existingSecret.keys | default dict) }}
{{- if not (hasKey $names $name) }}
{{- fail (printf "existingSecret.keys.%s: no account named %q in config.accounts reads its key from the Secret" $name $name) }}
{{- end }}
{{- end }}
{{- else }}
{{- range $name, $_ := ($.Values.apiKeys | default dict) }}
{{- if not (hasKey $names $name) }}
{{- fail (printf "apiKeys.%s: no account named %q in config.accounts reads its key from the Secret" $name $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml (dict "items" $items) }}
{{- end }}

{{/* The exporter's config.yaml: values.config with api_key_file set for the Secret's accounts. */}}
{{- define "credits-exporter.config" -}}
{{- $items := (include "credits-exporter.secretItems" . | fromYaml).items | default list }}
{{- $byName := dict }}
{{- range $items }}
{{- $_ := set $byName .path true }}
{{- end }}
{{- $config := deepCopy .Values.config }}
{{- range $account := ($config.accounts | default list) }}
{{- if hasKey $byName (toString $account.name) }}
{{- $_ := set $account "api_key_file" (printf "%s/%s" (trimSuffix "/" $.Values.secretsMountPath) (toString $account.name)) }}
{{- end }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
Alert thresholds that values can override: parameter -> the alert, the literal token in that
alert's expr, and the default written in that token. This is prometheus/README.md's threshold
table; tests/helm/test_chart.py fails when the two differ.
*/}}
{{- define "credits-exporter.thresholdTable" -}}
runningOutDays: {alert: CreditsRunningOut, default: 7, token: "< 7"}
expiringSoonDays: {alert: CreditsExpiringSoon, default: 14, token: "< 14"}
dataStaleSeconds: {alert: CreditsDataStale, default: 14400, token: "> 14400"}
exporterJobRegex: {alert: CreditsExporterDown, default: ".*credits-exporter.*", token: 'job=~".*credits-exporter.*"'}
{{- end }}

{{/*
The job of the chart's ServiceMonitor's targets as a regex, for CreditsExporterDown: exactly the
job it produces (the Service's app.kubernetes.io/name label, which nameOverride changes),
escaped for a PromQL string.
*/}}
{{- define "credits-exporter.jobRegex" -}}
{{- include "credits-exporter.name" . | regexQuoteMeta | replace "\\" "\\\\" }}
{{- end }}

{{/*
The rule groups of the shared rule files (files/prometheus -> ../../../prometheus), changed by
values: prometheusRule.thresholds written into the alerts' expressions (exporterJobRegex, when
empty, is the job of the chart's ServiceMonitor when that is enabled; without it Prometheus
scrapes the exporter some other way, its own job or a PodMonitor's <namespace>/<name>, and the
files' broad regex stays), prometheusRule.alerts.<name> (enabled, for, severity, labels) applied
to its alert, prometheusRule.additionalRuleLabels added to every alert, and
prometheusRule.extraRules appended as a group of their own. Without those values (and without
the ServiceMonitor) the groups are exactly those of the files.
*/}}
{{- define "credits-exporter.ruleGroups" -}}
{{- $table := include "credits-exporter.thresholdTable" . | fromYaml }}
{{- $thresholds := .Values.prometheusRule.thresholds | default dict }}
{{- $overrides := .Values.prometheusRule.alerts | default dict }}
{{- range $param, $_ := $thresholds }}
{{- if not (hasKey $table $param) }}
{{- fail (printf "prometheusRule.thresholds.%s: unknown threshold; known: %s" $param (keys $table | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- $groups := list }}
{{- $alerts := dict }}
{{- range $file := list "files/prometheus/alerts.yaml" "files/prometheus/rules.yaml" }}
{{- $doc := $.Files.Get $file | fromYaml }}
{{- if or (not $doc) (hasKey $doc "Error") (not $doc.groups) }}
{{- fail (printf "%s: missing, unreadable or without groups (the chart reads prometheus/ through the files/prometheus symlink)" $file) }}
{{- end }}
{{- range $group := $doc.groups }}
{{- $rules := list }}
{{- range $rule := ($group.rules | default list) }}
{{- $override := dict }}
{{- if $rule.alert }}
{{- $_ := set $alerts (toString $rule.alert) true }}
{{- $override = index $overrides (toString $rule.alert) | default dict }}
{{- range $param, $t := $table }}
{{- if eq (toString $t.alert) (toString $rule.alert) }}
{{- $value := toString $t.default }}
{{- if hasKey $thresholds $param }}
{{- $raw := index $thresholds $param }}
{{- $value = toString $raw }}
{{- if and (kindIs "float64" $raw) (eq (floor $raw) $raw) }}
{{- $value = printf "%.0f" $raw }}{{/* 1000000, not 1e+06 */}}
{{- end }}
{{- end }}
{{- if and (eq $param "exporterJobRegex") (eq $value "") }}
{{- $value = ternary (include "credits-exporter.jobRegex" $) (toString $t.default) $.Values.serviceMonitor.enabled }}
{{- end }}
{{- if not (contains $t.token $rule.expr) }}
{{- fail (printf "alert %s: its expr no longer contains %q, the token prometheus/README.md documents for %s" $rule.alert $t.token $param) }}
{{- end }}
{{- if ne $value (toString $t.default) }}
{{- $new := replace (toString $t.default) $value $t.token }}
{{- $_ := set $rule "expr" (replace $t.token $new $rule.expr) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $.Values.prometheusRule.additionalRuleLabels }}
{{- $_ := set $rule "labels" (merge (deepCopy ($rule.labels | default dict)) .) }}
{{- end }}
{{- with $override.for }}
{{- $_ := set $rule "for" . }}
{{- end }}
{{- with $override.labels }}
{{- $_ := set $rule "labels" (merge (deepCopy .) ($rule.labels | default dict)) }}
{{- end }}
{{- with $override.severity }}
{{- $_ := set $rule.labels "severity" . }}
{{- end }}
{{- end }}
{{- if or (not (hasKey $override "enabled")) $override.enabled }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- end }}
{{- if $rules }}
{{- $groups = append $groups (set $group "rules" $rules) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $_ := $overrides }}
{{- if not (hasKey $alerts $name) }}
{{- fail (printf "prometheusRule.alerts.%s: no such alert; the alerts are %s" $name (keys $alerts | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- with .Values.prometheusRule.extraRules }}
{{- $extra := list }}
{{- range $rule := . }}
{{- $rule = deepCopy $rule }}
{{- if and $rule.alert $.Values.prometheusRule.additionalRuleLabels }}
{{- $_ := set $rule "labels" (merge (deepCopy ($rule.labels | default dict)) $.Values.prometheusRule.additionalRuleLabels) }}
{{- end }}
{{- $extra = append $extra $rule }}
{{- end }}
{{- $groups = append $groups (dict "name" "credits.extra" "rules" $extra) }}
{{- end }}
{{- toYaml $groups }}
{{- end }}
