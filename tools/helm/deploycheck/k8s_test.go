package main

import (
	"strings"
	"testing"
)

// good is a minimal release that passes every check.
const good = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: dz, labels: {app: dz}}
spec:
  selector: {matchLabels: {app: dz}}
  template:
    metadata: {labels: {app: dz}}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: dzconnect
          image: dzconnect:1
          ports: [{name: http, containerPort: 8080}]
          env:
            - {name: DZCONNECT_LOG_LEVEL, value: info}
            - name: DZCONNECT_DATABASE_URL
              valueFrom: {secretKeyRef: {name: db, key: url}}
          livenessProbe: {httpGet: {path: /healthz, port: http}}
          readinessProbe: {httpGet: {path: /readyz, port: http}}
          resources: {limits: {memory: 512Mi}}
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata: {name: dz, labels: {app: dz, component: api}}
spec:
  selector: {app: dz}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: dz}
spec:
  selector: {matchLabels: {component: api}}
  endpoints: [{port: http, path: /metrics, scheme: http}]
`

var known = map[string]bool{"DZCONNECT_LOG_LEVEL": true, "DZCONNECT_DATABASE_URL": true}

func problems(t *testing.T, manifest string) []string {
	t.Helper()
	objs, errs := decodeManifests([]byte(manifest))
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return append(out, checkObjects(objs, known)...)
}

func TestGoodPasses(t *testing.T) {
	if ps := problems(t, good); len(ps) > 0 {
		t.Fatalf("problems in the good manifest:\n%s", strings.Join(ps, "\n"))
	}
}

func TestRefuses(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown field", "containerPort: 8080", "containerPort: 8080, hostPorts: [1]", `unknown field "spec.template.spec.containers[0].ports[0].hostPorts"`},
		{"field in the wrong case", "containerPort: 8080", "ContainerPort: 8080", `unknown field "spec.template.spec.containers[0].ports[0].ContainerPort"`},
		{"duplicate key", "image: dzconnect:1", "image: dzconnect:1\n          image: dzconnect:2", `key "image" already set`},
		{"bad quantity", "memory: 512Mi", "memory: 512MB!", "quantities must match"},
		{"wrong type", "containerPort: 8080", "containerPort: eighty", "cannot unmarshal"},
		{"unknown kind", "kind: Service\n", "kind: Servic\n", "v1/Servic: a kind this checker does not know"},
		{"a Secret", "kind: Service\n", "kind: Secret\n", "must not render Secrets"},
		{"selector not matching", "selector: {matchLabels: {app: dz}}", "selector: {matchLabels: {app: other}}", "does not match the pod template"},
		{"service selects nothing", "selector: {app: dz}", "selector: {app: nobody}", "selects no Deployment's pods"},
		{"missing target port", "targetPort: http", "targetPort: https", `targetPort "https" is no container port`},
		{"probe on a missing port", "path: /readyz, port: http", "path: /readyz, port: admin", `readiness probe port "admin"`},
		{"liveness elsewhere", "path: /healthz", "path: /", "liveness probe must GET /healthz"},
		{"writable root", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true"},
		{"root allowed", "runAsNonRoot: true, runAsUser: 65532", "runAsUser: 65532", "runAsNonRoot must be true"},
		{"capabilities kept", "drop: [ALL]", "drop: [NET_RAW]", "capabilities must drop ALL"},
		{"no seccomp", ", seccompProfile: {type: RuntimeDefault}", "", "seccompProfile must be RuntimeDefault"},
		{"token mounted", "automountServiceAccountToken: false", "automountServiceAccountToken: true", "automountServiceAccountToken must be false"},
		{"secret as literal", "valueFrom: {secretKeyRef: {name: db, key: url}}", "value: postgres://u:pw@db/dz", "DZCONNECT_DATABASE_URL must come from a Secret"},
		{"unknown setting", "DZCONNECT_LOG_LEVEL", "DZCONNECT_LOG_LEVL", "DZCONNECT_LOG_LEVL is no dzconnect setting"},
		{"duplicate env", "- {name: DZCONNECT_LOG_LEVEL, value: info}", "- {name: DZCONNECT_LOG_LEVEL, value: info}\n            - {name: DZCONNECT_LOG_LEVEL, value: debug}", "set twice"},
		{"monitor port missing", "endpoints: [{port: http,", "endpoints: [{port: metrics,", `endpoint port "metrics" is no port of Service/dz`},
		{"monitor selects nothing", "matchLabels: {component: api}", "matchLabels: {component: internal}", "selects no Service"},
		{"bad name", "name: dz, labels: {app: dz, component: api}", "name: Dz_api, labels: {app: dz, component: api}", "Dz_api"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the good manifest has no %q", tc.old)
			}
			ps := problems(t, strings.Replace(good, tc.old, tc.new, 1))
			for _, p := range ps {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Fatalf("want a problem containing %q, got:\n%s", tc.want, strings.Join(ps, "\n"))
		})
	}
}
