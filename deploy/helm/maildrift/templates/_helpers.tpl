{{/* The name of every object of a release. */}}
{{- define "maildrift.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the release's pods. */}}
{{- define "maildrift.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "maildrift.labels" -}}
{{ include "maildrift.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image: pinned by digest when one is set, else by tag. */}}
{{- define "maildrift.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* The pod template shared by the Deployment (shards: 1) and the StatefulSet (shards > 1). */}}
{{- define "maildrift.podTemplate" -}}
metadata:
  labels:
    {{- include "maildrift.selectorLabels" . | nindent 4 }}
    {{- with .Values.commonLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if and (not .Values.reloader.enabled) (not .Values.configExistingSecretName) }}
  annotations:
    checksum/config: {{ toYaml .Values.config | sha256sum }}
  {{- end }}
spec:
  automountServiceAccountToken: false
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: maildrift
      image: {{ include "maildrift.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - run
        - --config=/etc/maildrift/maildrift.yml
        - --web.listen-address=:9725
        - --state-dir=/var/lib/maildrift
        - --log.format={{ .Values.logFormat }}
        {{- if .Values.postgres.enabled }}
        - --state.url={{ required "postgres.url is required with postgres.enabled" .Values.postgres.url }}
        - --state.password-file=/etc/maildrift-postgres/{{ .Values.postgres.passwordSecret.key }}
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- if or (gt (int .Values.shards) 1) .Values.extraEnv }}
      env:
        {{- if gt (int .Values.shards) 1 }}
        # The ordinal at the end of the pod name (maildrift-2) picks the shard.
        - name: MAILDRIFT_SHARD
          value: "auto/{{ .Values.shards }}"
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      ports:
        - name: http-metrics
          containerPort: 9725
          protocol: TCP
      livenessProbe:
        httpGet: { path: /-/healthy, port: http-metrics }
        periodSeconds: 10
        timeoutSeconds: 5
      readinessProbe:
        httpGet: { path: /-/ready, port: http-metrics }
        periodSeconds: 10
        timeoutSeconds: 5
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - { name: config, mountPath: /etc/maildrift, readOnly: true }
        - { name: state, mountPath: /var/lib/maildrift }
        - { name: tmp, mountPath: /tmp }
        {{- if .Values.postgres.enabled }}
        - { name: postgres, mountPath: /etc/maildrift-postgres, readOnly: true }
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- if .Values.reloader.enabled }}
    - name: config-reloader
      image: {{ .Values.reloader.image }}
      command:
        - /bin/sh
        - -c
        - |
          last="$(readlink /etc/maildrift/..data)"
          while true; do
            sleep 10
            now="$(readlink /etc/maildrift/..data)"
            if [ "$now" != "$last" ]; then
              wget -q -O - --post-data '' http://127.0.0.1:9725/-/reload \
                && echo "config reloaded ($now)" \
                || echo "config reload refused or failed ($now): see maildrift's log"
              last="$now"
            fi
          done
      resources:
        requests: { cpu: 1m, memory: 4Mi }
        limits: { memory: 16Mi }
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - { name: config, mountPath: /etc/maildrift, readOnly: true }
    {{- end }}
  volumes:
    - name: config
      {{- if .Values.configExistingSecretName }}
      secret:
        secretName: {{ .Values.configExistingSecretName }}
      {{- else }}
      configMap:
        name: {{ include "maildrift.fullname" . }}
      {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if .Values.postgres.enabled }}
    # The state lives in PostgreSQL: the state directory stays empty.
    - name: state
      emptyDir: {}
    - name: postgres
      secret:
        secretName: {{ required "postgres.passwordSecret.name is required with postgres.enabled" .Values.postgres.passwordSecret.name }}
    {{- else if not .Values.persistence.enabled }}
    - name: state
      emptyDir: {}
    {{- else if le (int .Values.shards) 1 }}
    - name: state
      persistentVolumeClaim:
        claimName: {{ include "maildrift.fullname" . }}-state
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
