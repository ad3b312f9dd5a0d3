{{- define "cart.labels" -}}
app: {{ .Release.Name }}-cart
{{- end }}
