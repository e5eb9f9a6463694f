package envgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func storeOf(t testing.TB, svcs []corev1.Service) *Store {
	s := NewStore()
	for _, sv := range svcs {
		s.Update(slimService(t, sv))
	}
	s.MarkSynced()
	return s
}

// applyPatch applies a webhook patch the way the API server does.
func applyPatch(t testing.TB, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	if patch == nil {
		return pod
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decode patch %s: %v", patch, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", patch, err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

func mutate(t testing.TB, m *Mutator, pod *corev1.Pod) Result {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Mutate(pod.Namespace, raw)
	if err != nil {
		t.Fatalf("Mutate: %v", err)
	}
	return res
}

func allContainers(p *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range p.Spec.InitContainers {
		out = append(out, &p.Spec.InitContainers[i])
	}
	for i := range p.Spec.Containers {
		out = append(out, &p.Spec.Containers[i])
	}
	return out
}

// randomCluster builds Services across three namespaces, with names chosen
// to collide (a local "kubernetes", the same name in several namespaces)
// and every shape: headless, ExternalName, IPv6, dual-stack, UDP, SCTP,
// named and unnamed ports.
func randomCluster(r *rand.Rand) []corev1.Service {
	out := []corev1.Service{svc("default", "kubernetes", []string{"10.96.0.1"}, port("https", "", 443))}
	names := []string{"web", "db", "kubernetes", "cache-2", "my-api", "x"}
	protos := []corev1.Protocol{"", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
	for _, ns := range []string{"default", "shop", "other"} {
		for _, name := range names {
			if ns == "default" && name == "kubernetes" || r.IntN(3) == 0 {
				continue
			}
			var ips []string
			switch r.IntN(5) {
			case 0:
				ips = []string{"None"}
			case 1:
				ips = []string{fmt.Sprintf("fd00:10:96::%x", r.IntN(65535))}
			case 2:
				ips = []string{fmt.Sprintf("10.96.%d.%d", r.IntN(256), r.IntN(255)+1), fmt.Sprintf("fd00:10:96::%x", r.IntN(65535))}
			default:
				ips = []string{fmt.Sprintf("10.96.%d.%d", r.IntN(256), r.IntN(255)+1)}
			}
			var ports []corev1.ServicePort
			for i := range r.IntN(3) + 1 {
				pn := ""
				if i > 0 || r.IntN(2) == 0 {
					pn = []string{"http", "grpc-web", "metrics", "9x"}[i%4]
				}
				ports = append(ports, port(pn, protos[r.IntN(len(protos))], int32(80+i*1000+r.IntN(3))))
			}
			s := svc(ns, name, ips, ports...)
			if r.IntN(8) == 0 {
				s = svc(ns, name, nil, port("", "", 80))
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "example.com"
			}
			out = append(out, s)
		}
	}
	return out
}

// randomPod builds a Pod whose containers define some service variables
// themselves, reference others with $(VAR) (escaped and unknown ones too),
// read some from a ConfigMap with and without a prefix, and use valueFrom.
func randomPod(r *rand.Rand, ns string, varNames []string) (*corev1.Pod, map[string]map[string]string) {
	pick := func() string { return varNames[r.IntN(len(varNames))] }
	configMaps := map[string]map[string]string{
		"plain":    {pick(): "from-configmap", "OTHER": "x"},
		"prefixed": {"SERVICE_HOST": "from-prefixed", "x": "y"},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}}
	switch r.IntN(3) {
	case 0:
		pod.Spec.EnableServiceLinks = new(true)
	case 1:
		pod.Spec.EnableServiceLinks = new(false)
	}
	container := func(name string) corev1.Container {
		c := corev1.Container{Name: name, Image: "busybox"}
		for range r.IntN(6) {
			switch r.IntN(7) {
			case 0:
				c.Env = append(c.Env, corev1.EnvVar{Name: pick(), Value: "mine"})
			case 1:
				c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("REF%d", len(c.Env)), Value: "url=$(" + pick() + ")/x"})
			case 2:
				c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("ESC%d", len(c.Env)), Value: "$$(" + pick() + ") $(NOPE) $(" + pick()})
			case 3:
				c.Env = append(c.Env, corev1.EnvVar{Name: pick(), ValueFrom: &corev1.EnvVarSource{
					ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "plain"}, Key: "missing", Optional: new(true)}}})
			case 4:
				c.Env = append(c.Env, corev1.EnvVar{Name: pick(), ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}})
			case 5:
				c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "plain"}}})
			case 6:
				prefix := pick()
				prefix = prefix[:strings.IndexByte(prefix, '_')+1]
				c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{Prefix: prefix, ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "prefixed"}}})
			}
		}
		return c
	}
	for i := range r.IntN(2) {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, container(fmt.Sprintf("init%d", i)))
	}
	for i := range r.IntN(3) + 1 {
		pod.Spec.Containers = append(pod.Spec.Containers, container(fmt.Sprintf("c%d", i)))
	}
	return pod, configMaps
}

// TestPatchedPodHasKubeletsEnvironment is the contract: for many random
// clusters and Pods, every container's environment as kubelet builds it is
// the same with the patch and without; where the container neither reads
// envFrom nor sets service variables itself, the patch alone provides all
// of it (a kubelet adding nothing would still
// produce it); and a second pass over the patched Pod changes nothing.
func TestPatchedPodHasKubeletsEnvironment(t *testing.T) {
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 7))
		services := randomCluster(r)
		ns := []string{"shop", "other", "default", "empty"}[r.IntN(4)]
		var varNames []string
		for k := range kubeletServiceEnv(services, ns, true) {
			varNames = append(varNames, k)
		}
		slices.Sort(varNames)
		pod, configMaps := randomPod(r, ns, varNames)
		m := &Mutator{Store: storeOf(t, services)}
		res := mutate(t, m, pod)
		patched := applyPatch(t, pod, res.Patch)

		before, after := allContainers(pod), allContainers(patched)
		for i := range before {
			want, err := kubeletEnv(pod, before[i], services, configMaps, true)
			if err != nil {
				t.Fatal(err)
			}
			got, err := kubeletEnv(patched, after[i], services, configMaps, true)
			if err != nil {
				t.Fatal(err)
			}
			if !mapsEqual(got, want) {
				t.Fatalf("seed %d container %s: environment changed by the patch\npatch %s\n got %v\nwant %v", seed, before[i].Name, res.Patch, got, want)
			}
			if len(before[i].EnvFrom) == 0 && !definesServiceVar(before[i], varNames) {
				alone, err := kubeletEnv(patched, after[i], services, configMaps, false)
				if err != nil {
					t.Fatal(err)
				}
				if !mapsEqual(alone, want) {
					t.Fatalf("seed %d container %s: the patch alone does not give kubelet's environment\npatch %s\n got %v\nwant %v", seed, before[i].Name, res.Patch, alone, want)
				}
			}
		}
		if again := mutate(t, m, patched); again.Patch != nil {
			t.Fatalf("seed %d: second pass patched again: %s", seed, again.Patch)
		}
	}
}

// definesServiceVar says the container sets a service variable's name
// itself. The patch then leaves that name to the container, and a $(VAR)
// reference to it placed before the definition is resolved by kubelet's own
// service variables, as it would be without the webhook.
func definesServiceVar(c *corev1.Container, varNames []string) bool {
	for _, e := range c.Env {
		if slices.Contains(varNames, e.Name) {
			return true
		}
	}
	return false
}

func TestMutate(t *testing.T) {
	services := []corev1.Service{
		svc("default", "kubernetes", []string{"10.96.0.1"}, port("https", "", 443)),
		svc("shop", "web", []string{"10.96.0.20"}, port("", "", 80)),
		svc("shop", "db", []string{"10.96.0.21"}, port("", "", 5432)),
		svc("other", "cache", []string{"10.96.0.30"}, port("", "", 6379)),
		svc("other", "web", []string{"10.96.0.31"}, port("", "", 8080)),
	}
	store := storeOf(t, services)
	basePod := func(annotations map[string]string, mods ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p", Annotations: annotations},
			Spec: corev1.PodSpec{EnableServiceLinks: new(true), Containers: []corev1.Container{{Name: "app"}}}}
		for _, m := range mods {
			m(p)
		}
		return p
	}
	envOf := func(p *corev1.Pod) map[string]string {
		m := map[string]string{}
		for _, e := range p.Spec.Containers[0].Env {
			m[e.Name] = e.Value
		}
		return m
	}
	tests := []struct {
		name     string
		limits   Limits
		pod      *corev1.Pod
		want     []string // variable names that must be present after the patch
		absent   []string // and must not
		links    *bool    // enableServiceLinks after the patch
		warnings []string // substrings, one per warning expected
		optOut   bool
	}{
		{
			name:   "no annotation: the namespace's services and the master",
			pod:    basePod(nil),
			want:   []string{"WEB_SERVICE_HOST", "DB_SERVICE_HOST", "KUBERNETES_SERVICE_HOST", "KUBERNETES_PORT_443_TCP_ADDR"},
			absent: []string{"CACHE_SERVICE_HOST"},
			links:  new(true),
		},
		{
			name:   "annotation selects services across namespaces and turns service links off",
			pod:    basePod(map[string]string{AnnotationServices: " db , cache.other,"}),
			want:   []string{"DB_SERVICE_HOST", "CACHE_SERVICE_HOST", "KUBERNETES_SERVICE_HOST"},
			absent: []string{"WEB_SERVICE_HOST"},
			links:  new(false),
		},
		{
			name:     "annotation naming a missing service and a bad entry warns",
			pod:      basePod(map[string]string{AnnotationServices: "nope,Bad.Name,db"}),
			want:     []string{"DB_SERVICE_HOST"},
			links:    new(false),
			warnings: []string{`"Bad.Name" is not name or name.namespace`, "service nope.shop not found"},
		},
		{
			name:     "two selected services of one name: the first wins",
			pod:      basePod(map[string]string{AnnotationServices: "web.other,web"}),
			want:     []string{"WEB_SERVICE_HOST"},
			links:    new(false),
			warnings: []string{"service web.shop skipped"},
		},
		{
			name:   "opted out by annotation",
			pod:    basePod(map[string]string{AnnotationInject: "false"}),
			optOut: true,
			absent: []string{"WEB_SERVICE_HOST"},
			links:  new(true),
		},
		{
			name:     "the cap stops injection at a whole service and says so",
			limits:   Limits{MaxVars: 10},
			pod:      basePod(nil),
			want:     []string{"DB_SERVICE_HOST"},
			absent:   []string{"KUBERNETES_SERVICE_HOST", "WEB_SERVICE_HOST"},
			links:    new(true),
			warnings: []string{`container "app": 15 service variables not injected: limit of 10 variables or 0 bytes reached; kubelet adds the rest itself`},
		},
		{
			name:     "the byte cap counts names and values",
			limits:   Limits{MaxBytes: 150},
			pod:      basePod(nil),
			absent:   []string{"DB_SERVICE_HOST"},
			links:    new(true),
			warnings: []string{"limit of 0 variables or 150 bytes reached"},
		},
		{
			name: "a variable the container sets is left alone",
			pod: basePod(nil, func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "WEB_SERVICE_HOST", Value: "mine"}}
			}),
			want:  []string{"DB_SERVICE_HOST"},
			links: new(true),
		},
		{
			name: "envFrom with a prefix hides only the names it could set; with selection that is worth a warning",
			pod: basePod(map[string]string{AnnotationServices: "web,db"}, func(p *corev1.Pod) {
				p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "DB_", ConfigMapRef: &corev1.ConfigMapEnvSource{}}}
			}),
			want:     []string{"WEB_SERVICE_HOST"},
			absent:   []string{"DB_SERVICE_HOST"},
			links:    new(false),
			warnings: []string{`container "app": 7 service variables not injected: envFrom may define them`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Mutator{Store: store, Limits: tt.limits}
			res := mutate(t, m, tt.pod)
			if res.OptedOut != tt.optOut {
				t.Fatalf("OptedOut = %v", res.OptedOut)
			}
			patched := applyPatch(t, tt.pod, res.Patch)
			env := envOf(patched)
			for _, n := range tt.want {
				if _, ok := env[n]; !ok {
					t.Errorf("%s missing; env %v", n, env)
				}
			}
			for _, n := range tt.absent {
				if v, ok := env[n]; ok && v != "mine" {
					t.Errorf("%s = %q injected", n, v)
				}
			}
			if got := patched.Spec.EnableServiceLinks; (got == nil) != (tt.links == nil) || got != nil && *got != *tt.links {
				t.Errorf("enableServiceLinks = %v", got)
			}
			if len(res.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d", res.Warnings, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.Contains(res.Warnings[i], w) {
					t.Errorf("warning %q does not say %q", res.Warnings[i], w)
				}
			}
			if again := mutate(t, m, patched); again.Patch != nil {
				t.Errorf("not idempotent: second patch %s", again.Patch)
			}
		})
	}
}

func TestMutateKeepsUnknownEnvFields(t *testing.T) {
	m := &Mutator{Store: storeOf(t, []corev1.Service{svc("shop", "web", []string{"10.96.0.20"}, port("", "", 80))})}
	raw := []byte(`{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","env":[{"name":"A","value":"1","futureField":{"x":1}}]}]}}`)
	res, err := m.Mutate("shop", raw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Patch), `{"name":"A","value":"1","futureField":{"x":1}}`) {
		t.Errorf("patch rewrote the container's own entry: %s", res.Patch)
	}
}

func TestParseRefs(t *testing.T) {
	refs, bad := ParseRefs("db, cache.other ,,a.b.c,UP,-x", "shop")
	want := []Ref{{"shop", "db"}, {"other", "cache"}}
	if !slices.Equal(refs, want) {
		t.Errorf("refs %v, want %v", refs, want)
	}
	if !slices.Equal(bad, []string{"a.b.c", "UP", "-x"}) {
		t.Errorf("bad %q", bad)
	}
}
