package envgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
)

// FuzzPatchApplies runs the Mutator on arbitrary Pod JSON against a small
// cluster of Services made from the second input. It must never panic, and
// whenever it returns a patch, that patch applies (as the API server
// applies it, with evanphx/json-patch v4) to the document sent; the result
// decodes as a Pod with the same containers; each container's env entries
// from before are all still there, unchanged and in the same order, and no
// added entry reuses a name the container defined; and mutating the
// patched Pod again produces no patch.
func FuzzPatchApplies(f *testing.F) {
	files, _ := filepath.Glob("testdata/webhook/*.request.json")
	for i, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var review struct {
			Request struct {
				Namespace string
				Object    json.RawMessage
			}
		}
		if err := json.Unmarshal(b, &review); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		if len(review.Request.Object) == 0 || string(review.Request.Object) == "null" {
			continue
		}
		// The golden files' cluster (testWebhook's), and a random one.
		ns := byte(0)
		if review.Request.Namespace == "other" {
			ns = 1
		}
		f.Add([]byte(review.Request.Object), []byte{ns, 0, 0x03, 0x01, 0x05, 0x04, 0x02, 0x00})
		f.Add([]byte(review.Request.Object), []byte{ns, byte(i), 0x10, 0x23, 0x37, 0x41, 0x55, 0x62, 0x0a, 0x03, 0x1b})
	}
	for i, pod := range []string{
		`{"spec":{"containers":[{"name":"a"}]}}`,
		`{"spec":{"containers":[{"name":"a","env":null}],"initContainers":[]}}`,
		`{"spec":{"enableServiceLinks":false,"containers":[{"name":"a","env":[{"name":"X","value":"1"}]}]}}`,
		`{"metadata":{"annotations":{"svcdisc.io/services":"web, db.shop,cache.other, Bad!"}},"spec":{"containers":[{"name":"a","env":[{"name":"WEB_SERVICE_HOST","value":"mine"},{"name":"URL","value":"http://$(WEB_SERVICE_HOST)/"}]}]}}`,
		`{"metadata":{"annotations":{"svcdisc.io/services":""}},"spec":{"containers":[{"name":"a"}]}}`,
		`{"metadata":{"labels":{"svcdisc.io/inject":"false"}},"spec":{"containers":[{"name":"a"}]}}`,
		`{"metadata":{"annotations":{"svcdisc.io/inject":"maybe"}},"spec":{"containers":[{"name":"a"}]}}`,
		`{"spec":{"containers":[{"name":"a","env":[{"name":"Z","value":"<&>","future":{"x":[1,2.50,"é"]}},{"name":"WEB_PORT","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}}],"envFrom":[{"prefix":"DB_","configMapRef":{"name":"c"}}]},{"name":"b","envFrom":[{"secretRef":{"name":"s"}}]}],"initContainers":[{"name":"i","env":[{"name":"KUBERNETES_SERVICE_HOST","value":"x"}]}]}}`,
		`{"spec":{"containers":[{"name":"a","env":[null,{"name":"A"},{"name":"A","value":"again"}]}]}}`,
		`{"spec":{"containers":[]}}`,
		`{"spec":null}`,
		`{}`,
		`[]`,
		`{"Spec":{"containers":[{"name":"a"}]}}`,
		`{"spec":{"Containers":[{"name":"a"}]}}`,
		`{"spec":{"containers":[{"name":"a"}]},"spec":{"containers":[{"name":"b"}]}}`,
	} {
		f.Add([]byte(pod), []byte{byte(i % 4), byte(i), 0x00, 0x01, 0x08, 0x13, 0x22, 0x05, 0x31, 0x44, 0x0c})
	}
	f.Fuzz(func(t *testing.T, pod, cluster []byte) {
		ns, limits, services := fuzzCluster(cluster)
		m := &Mutator{Store: storeOf(t, services), Limits: limits}
		res, err := m.Mutate(ns, pod)
		if err != nil || res.Patch == nil {
			return
		}
		p, err := jsonpatch.DecodePatch(res.Patch)
		if err != nil {
			t.Fatalf("patch does not decode: %v\n%s", err, res.Patch)
		}
		patched, err := p.Apply(pod)
		if err != nil {
			t.Fatalf("patch does not apply: %v\npatch %s", err, res.Patch)
		}
		var typed corev1.Pod
		if err := json.Unmarshal(patched, &typed); err != nil {
			t.Fatalf("patched document is not a Pod: %v\n%s", err, patched)
		}
		before, err := decodeRawPod(pod)
		if err != nil {
			t.Fatalf("original pod: %v", err)
		}
		after, err := decodeRawPod(patched)
		if err != nil {
			t.Fatalf("patched pod: %v\n%s", err, patched)
		}
		added := 0
		for _, c := range []struct {
			field         string
			before, after []rawContainer
		}{
			{"initContainers", before.Spec.InitContainers, after.Spec.InitContainers},
			{"containers", before.Spec.Containers, after.Spec.Containers},
		} {
			if len(c.before) != len(c.after) {
				t.Fatalf("%s: %d before the patch, %d after\npatch %s", c.field, len(c.before), len(c.after), res.Patch)
			}
			for i := range c.before {
				n, err := checkEnvKept(c.before[i].Env, c.after[i].Env)
				if err != nil {
					t.Fatalf("%s[%d]: %v\npatch %s", c.field, i, err, res.Patch)
				}
				added += n
			}
		}
		if added != res.Injected {
			t.Fatalf("patch adds %d env entries, Result.Injected says %d\npatch %s", added, res.Injected, res.Patch)
		}
		again, err := m.Mutate(ns, patched)
		if err != nil {
			t.Fatalf("patched pod does not mutate: %v\n%s", err, patched)
		}
		if again.Patch != nil {
			t.Fatalf("second pass patched again: %s\nfirst patch %s", again.Patch, res.Patch)
		}
	})
}

// checkEnvKept says whether the env list after a patch holds every entry of
// the list before it, unchanged (as JSON values: a patch re-encodes them)
// and in the same order, and whether the entries it adds have names of
// their own. It returns the number of entries added.
func checkEnvKept(before, after []json.RawMessage) (int, error) {
	decode := func(raw json.RawMessage) (any, error) {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		err := d.Decode(&v)
		return v, err
	}
	nameOf := func(v any) (string, bool) {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		name, ok := obj["name"].(string)
		return name, ok
	}
	var want []any
	names := map[string]bool{}
	for _, raw := range before {
		v, err := decode(raw)
		if err != nil {
			return 0, fmt.Errorf("env entry %s before the patch: %v", raw, err)
		}
		want = append(want, v)
		if name, ok := nameOf(v); ok {
			names[name] = true
		}
	}
	j := 0
	for _, raw := range after {
		v, err := decode(raw)
		if err != nil {
			return 0, fmt.Errorf("env entry %s after the patch: %v", raw, err)
		}
		if j < len(want) && reflect.DeepEqual(v, want[j]) {
			j++
			continue
		}
		name, ok := nameOf(v)
		if !ok {
			return 0, fmt.Errorf("added env entry %s has no name", raw)
		}
		if names[name] {
			return 0, fmt.Errorf("added env entry %s overrides the container's own %s", raw, name)
		}
	}
	if j < len(want) {
		return 0, fmt.Errorf("env entry %d of %d before the patch is gone or moved: %v", j, len(want), want[j])
	}
	return len(after) - len(before), nil
}

// fuzzCluster makes the namespace of the request, the limits and a small
// cluster from fuzz bytes: byte 0 picks the namespace, byte 1 the limits,
// then every 3 bytes one Service (up to 16) of some namespace and name
// (chosen to collide), address shape (headless, IPv4, IPv6, dual-stack,
// ExternalName) and ports. default/kubernetes is always there, as in a
// real cluster.
func fuzzCluster(b []byte) (ns string, limits Limits, services []corev1.Service) {
	at := func(i int) int {
		if i < len(b) {
			return int(b[i])
		}
		return 0
	}
	namespaces := []string{"shop", "other", "default", "empty"}
	ns = namespaces[at(0)%len(namespaces)]
	limits = []Limits{DefaultLimits, {}, {MaxVars: 8}, {MaxBytes: 300}, {MaxVars: 20, MaxBytes: 700}}[at(1)%5]
	services = []corev1.Service{svc("default", "kubernetes", []string{"10.96.0.1"}, port("https", "", 443))}
	names := []string{"web", "db", "kubernetes", "cache-2", "my-api", "x"}
	portNames := []string{"", "http", "grpc-web", "metrics", "9x"}
	protos := []corev1.Protocol{"", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
	for i, off := 0, 2; off < len(b) && i < 16; i, off = i+1, off+3 {
		c0, c1, c2 := at(off), at(off+1), at(off+2)
		svcNS, name := namespaces[c0%3], names[(c0/3)%len(names)]
		v4 := fmt.Sprintf("10.96.%d.%d", i, c1+1)
		v6 := fmt.Sprintf("fd00:10:96::%x:%x", i, c1)
		var ports []corev1.ServicePort
		for k := range c2%3 + 1 {
			pn := portNames[(c2/3+k)%len(portNames)]
			if k > 0 && pn == "" {
				pn = "p" // kubernetes requires names when there are several ports
			}
			ports = append(ports, port(pn, protos[(c2/16+k)%len(protos)], int32(80+k*1000+c1%3)))
		}
		var s corev1.Service
		switch c1 % 6 {
		case 0:
			s = svc(svcNS, name, []string{"None"}, ports...)
		case 1:
			s = svc(svcNS, name, []string{v6}, ports...)
		case 2:
			s = svc(svcNS, name, []string{v4, v6}, ports...)
		case 3:
			s = svc(svcNS, name, nil, port("", "", 80))
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "example.com"
		default:
			s = svc(svcNS, name, []string{v4}, ports...)
		}
		services = append(services, s)
	}
	return ns, limits, services
}
