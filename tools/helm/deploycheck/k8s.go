package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest.
type object struct {
	apiVersion, kind, name string
	meta                   metav1.ObjectMeta
	typed                  any
}

// kinds maps apiVersion/kind to a constructor of the typed struct the API server
// decodes it into. A kind missing here is refused: the checker vouches only for what
// it knows.
var kinds = map[string]func() any{
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
	// Decoded only to be refused: secret values are never chart values.
	"v1/Secret": func() any { return &corev1.Secret{} },
}

// workload is an object with a pod template.
type workload struct {
	o    object
	tmpl *corev1.PodTemplateSpec
}

// decodeManifests splits a multi-document YAML stream and decodes each document
// strictly into its typed struct: duplicate keys, unknown fields (case-sensitively, as
// the API server matches them), wrong types and unparsable quantities are errors.
func decodeManifests(data []byte) ([]object, []error) {
	var objs []object
	var errs []error
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			break
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		var tm metav1.TypeMeta
		if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil || tm.APIVersion == "" || tm.Kind == "" {
			errs = append(errs, fmt.Errorf("document %d: no apiVersion and kind", i))
			continue
		}
		key := tm.APIVersion + "/" + tm.Kind
		mk, ok := kinds[key]
		if !ok {
			errs = append(errs, fmt.Errorf("document %d: %s: a kind this checker does not know (add it to deploycheck's kinds; the chart needs no RBAC: dzconnect never calls the Kubernetes API)", i, key))
			continue
		}
		typed := mk()
		strict, err := kjson.UnmarshalStrict(js, typed, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d (%s): %w", i, key, err))
			continue
		}
		for _, s := range strict {
			errs = append(errs, fmt.Errorf("document %d (%s): %w", i, key, s))
		}
		var om struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		_ = kjson.UnmarshalCaseSensitivePreserveInts(js, &om)
		objs = append(objs, object{apiVersion: tm.APIVersion, kind: tm.Kind, name: om.Metadata.Name, meta: om.Metadata, typed: typed})
	}
	return objs, errs
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") || t == "---" {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// secretVariables are the settings that must come from a Secret (valueFrom.secretKeyRef).
var secretVariables = map[string]bool{
	"DZCONNECT_DATABASE_URL": true, "DZCONNECT_VAULT_TOKEN": true, "DZCONNECT_VAULT_SECRET_ID": true,
	"DZCONNECT_VAULT_ROLE_ID": true, "DZCONNECT_ADMIN_KEY": true,
}

// checker accumulates the problems of one set of objects.
type checker struct {
	known    map[string]bool
	problems []string
}

func (c *checker) addf(o object, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("%s/%s: %s", o.kind, o.name, fmt.Sprintf(format, args...)))
}

// checkObjects checks what the typed decode cannot: names, labels, references between
// objects, and the chart's promises (probes, security context, secrets from Secrets).
func checkObjects(objs []object, known map[string]bool) []string {
	c := &checker{known: known}
	var workloads []workload
	deployments := map[string]*appsv1.Deployment{}
	services := map[string]*corev1.Service{}
	seen := map[string]bool{}
	for _, o := range objs {
		if seen[o.kind+"/"+o.name] {
			c.addf(o, "defined twice")
		}
		seen[o.kind+"/"+o.name] = true
		c.checkMeta(o)
		switch t := o.typed.(type) {
		case *appsv1.Deployment:
			deployments[o.name] = t
			workloads = append(workloads, workload{o, &t.Spec.Template})
		case *batchv1.Job:
			workloads = append(workloads, workload{o, &t.Spec.Template})
		case *corev1.Service:
			services[o.name] = t
		case *corev1.Secret:
			c.addf(o, "the chart must not render Secrets: secret values are never chart values (reference an existing Secret)")
		}
	}
	// podsSelected: the workloads whose pod template a selector selects.
	podsSelected := func(sel labels.Selector) []workload {
		var out []workload
		for _, w := range workloads {
			if _, isDeployment := w.o.typed.(*appsv1.Deployment); isDeployment && sel.Matches(labels.Set(w.tmpl.Labels)) {
				out = append(out, w)
			}
		}
		return out
	}
	for _, w := range workloads {
		c.checkPod(w.o, &w.tmpl.Spec)
	}
	for _, o := range objs {
		switch t := o.typed.(type) {
		case *appsv1.Deployment:
			c.checkDeployment(o, t)
		case *batchv1.Job:
			c.checkJob(o, t)
		case *corev1.Service:
			if len(t.Spec.Selector) == 0 {
				c.addf(o, "no selector")
				continue
			}
			if errs := validation.IsDNS1035Label(o.name); len(errs) > 0 {
				c.addf(o, "name: %s", strings.Join(errs, "; "))
			}
			pods := podsSelected(labels.SelectorFromSet(t.Spec.Selector))
			if len(pods) == 0 {
				c.addf(o, "selector %v selects no Deployment's pods", t.Spec.Selector)
			}
			for _, p := range t.Spec.Ports {
				if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
					c.addf(o, "port %q: %s", p.Name, strings.Join(errs, "; "))
				}
				if p.TargetPort.StrVal != "" {
					for _, w := range pods {
						if !hasContainerPort(&w.tmpl.Spec, p.TargetPort.StrVal) {
							c.addf(o, "targetPort %q is no container port of %s/%s", p.TargetPort.StrVal, w.o.kind, w.o.name)
						}
					}
				}
			}
		case *policyv1.PodDisruptionBudget:
			c.selects(o, t.Spec.Selector, podsSelected)
			if (t.Spec.MinAvailable == nil) == (t.Spec.MaxUnavailable == nil) {
				c.addf(o, "set exactly one of minAvailable and maxUnavailable")
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := t.Spec.ScaleTargetRef
			d, ok := deployments[ref.Name]
			switch {
			case ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || !ok:
				c.addf(o, "scaleTargetRef %s %s/%s is no Deployment of this release", ref.APIVersion, ref.Kind, ref.Name)
			case d.Spec.Replicas != nil:
				c.addf(o, "Deployment/%s sets replicas: every upgrade would reset what the autoscaler chose", ref.Name)
			}
			if t.Spec.MinReplicas != nil && *t.Spec.MinReplicas > t.Spec.MaxReplicas {
				c.addf(o, "minReplicas %d > maxReplicas %d", *t.Spec.MinReplicas, t.Spec.MaxReplicas)
			}
		case *networkingv1.NetworkPolicy:
			pods := c.selects(o, &t.Spec.PodSelector, podsSelected)
			for _, rule := range t.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port != nil && p.Port.StrVal != "" {
						for _, w := range pods {
							if !hasContainerPort(&w.tmpl.Spec, p.Port.StrVal) {
								c.addf(o, "ingress port %q is no container port of %s/%s", p.Port.StrVal, w.o.kind, w.o.name)
							}
						}
					}
				}
			}
		case *monitoringv1.ServiceMonitor:
			sel, err := metav1.LabelSelectorAsSelector(&t.Spec.Selector)
			if err != nil || sel.Empty() {
				c.addf(o, "selector: %v", err)
				continue
			}
			var matched []*corev1.Service
			for _, s := range services {
				if sel.Matches(labels.Set(s.Labels)) {
					matched = append(matched, s)
				}
			}
			if len(matched) == 0 {
				c.addf(o, "selector %s selects no Service of this release", sel)
			}
			if len(t.Spec.Endpoints) == 0 {
				c.addf(o, "no endpoints")
			}
			for _, ep := range t.Spec.Endpoints {
				if ep.Scheme != nil && !map[string]bool{"http": true, "https": true, "HTTP": true, "HTTPS": true}[string(*ep.Scheme)] {
					c.addf(o, "endpoint scheme %q: must be http or https", *ep.Scheme)
				}
				for _, s := range matched {
					if !hasServicePort(s, ep.Port) {
						c.addf(o, "endpoint port %q is no port of Service/%s", ep.Port, s.Name)
					}
				}
			}
		case *monitoringv1.PrometheusRule:
			for _, g := range t.Spec.Groups {
				for _, r := range g.Rules {
					if (r.Alert == "") == (r.Record == "") {
						c.addf(o, "group %s: a rule needs exactly one of alert and record", g.Name)
					}
					if strings.TrimSpace(r.Expr.String()) == "" {
						c.addf(o, "group %s rule %s%s: empty expr", g.Name, r.Alert, r.Record)
					}
					if r.Alert != "" && r.Labels["severity"] == "" {
						c.addf(o, "alert %s: no severity label", r.Alert)
					}
				}
			}
		}
	}
	return c.problems
}

func (c *checker) checkMeta(o object) {
	if errs := validation.IsDNS1123Subdomain(o.name); len(errs) > 0 {
		c.addf(o, "name %q: %s", o.name, strings.Join(errs, "; "))
	}
	for k, v := range o.meta.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			c.addf(o, "label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			c.addf(o, "label %s=%q: %s", k, v, strings.Join(errs, "; "))
		}
	}
}

// selects checks that a label selector is valid and selects a Deployment's pods.
func (c *checker) selects(o object, ls *metav1.LabelSelector, podsSelected func(labels.Selector) []workload) []workload {
	if ls == nil {
		c.addf(o, "no selector")
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		c.addf(o, "selector: %v", err)
		return nil
	}
	if sel.Empty() {
		c.addf(o, "empty selector selects every pod in the namespace")
		return nil
	}
	pods := podsSelected(sel)
	if len(pods) == 0 {
		c.addf(o, "selector %s selects no Deployment's pods", sel)
	}
	return pods
}

func (c *checker) checkDeployment(o object, d *appsv1.Deployment) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || d.Spec.Selector == nil {
		c.addf(o, "selector: %v", err)
	} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		c.addf(o, "selector %s does not match the pod template's labels %v", sel, d.Spec.Template.Labels)
	}
	for _, ct := range d.Spec.Template.Spec.Containers {
		if ct.LivenessProbe == nil || ct.ReadinessProbe == nil {
			c.addf(o, "container %s: liveness and readiness probes are required", ct.Name)
			continue
		}
		if g := ct.LivenessProbe.HTTPGet; g == nil || g.Path != "/healthz" {
			c.addf(o, "container %s: liveness probe must GET /healthz", ct.Name)
		}
		if g := ct.ReadinessProbe.HTTPGet; g == nil || g.Path != "/readyz" {
			c.addf(o, "container %s: readiness probe must GET /readyz", ct.Name)
		}
	}
}

func (c *checker) checkJob(o object, j *batchv1.Job) {
	if p := j.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
		c.addf(o, "restartPolicy %q: a Job's pods need Never or OnFailure", p)
	}
	if o.meta.Labels["app.kubernetes.io/component"] == "migrate" {
		hooks := strings.Split(o.meta.Annotations["helm.sh/hook"], ",")
		if !contains(hooks, "pre-install") || !contains(hooks, "pre-upgrade") {
			c.addf(o, "the migration Job must be a pre-install and pre-upgrade hook, got %q", o.meta.Annotations["helm.sh/hook"])
		}
	}
}

// checkPod checks a pod template: the security context the chart promises (non-root,
// read-only root, no capabilities, no privilege escalation, seccomp RuntimeDefault),
// references inside the pod, and the environment.
func (c *checker) checkPod(o object, spec *corev1.PodSpec) {
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		c.addf(o, "automountServiceAccountToken must be false: dzconnect never calls the Kubernetes API")
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if volumes[v.Name] {
			c.addf(o, "volume %q defined twice", v.Name)
		}
		volumes[v.Name] = true
	}
	if len(spec.Containers) == 0 {
		c.addf(o, "no containers")
	}
	for _, ct := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		where := "container " + ct.Name
		if ct.Image == "" {
			c.addf(o, "%s: no image", where)
		}
		sc := ct.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			c.addf(o, "%s: runAsNonRoot must be true", where)
		}
		if uid := firstInt64(sc.RunAsUser, psc.RunAsUser); uid != nil && *uid == 0 {
			c.addf(o, "%s: runs as uid 0", where)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			c.addf(o, "%s: readOnlyRootFilesystem must be true", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			c.addf(o, "%s: allowPrivilegeEscalation must be false", where)
		}
		if sc.Privileged != nil && *sc.Privileged {
			c.addf(o, "%s: privileged", where)
		}
		if sc.Capabilities == nil || !containsCap(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			c.addf(o, "%s: capabilities must drop ALL and add none", where)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			c.addf(o, "%s: seccompProfile must be RuntimeDefault", where)
		}
		ports := map[string]bool{}
		for _, p := range ct.Ports {
			if p.Name == "" {
				continue
			}
			if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
				c.addf(o, "%s: port name %q: %s", where, p.Name, strings.Join(errs, "; "))
			}
			if ports[p.Name] {
				c.addf(o, "%s: port %q defined twice", where, p.Name)
			}
			ports[p.Name] = true
		}
		for name, pr := range map[string]*corev1.Probe{"startup": ct.StartupProbe, "liveness": ct.LivenessProbe, "readiness": ct.ReadinessProbe} {
			if pr != nil && pr.HTTPGet != nil && pr.HTTPGet.Port.StrVal != "" && !ports[pr.HTTPGet.Port.StrVal] {
				c.addf(o, "%s: %s probe port %q is no port of the container", where, name, pr.HTTPGet.Port.StrVal)
			}
		}
		for _, m := range ct.VolumeMounts {
			if !volumes[m.Name] {
				c.addf(o, "%s: volumeMount %q has no volume", where, m.Name)
			}
		}
		env := map[string]bool{}
		for _, e := range ct.Env {
			if env[e.Name] {
				c.addf(o, "%s: env %s set twice (the last wins silently)", where, e.Name)
			}
			env[e.Name] = true
			if strings.HasPrefix(e.Name, "DZCONNECT_") && !c.known[e.Name] {
				c.addf(o, "%s: env %s is no dzconnect setting (docs/configuration.md)", where, e.Name)
			}
			if secretVariables[e.Name] && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				c.addf(o, "%s: env %s must come from a Secret (valueFrom.secretKeyRef), never a literal", where, e.Name)
			}
		}
	}
}

func hasContainerPort(spec *corev1.PodSpec, name string) bool {
	for _, ct := range spec.Containers {
		for _, p := range ct.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

func hasServicePort(s *corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func firstInt64(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

func containsCap(list []corev1.Capability, s corev1.Capability) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
