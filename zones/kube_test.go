package zones

import (
	"io"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// recordingSink remembers the events it got.
type recordingSink struct {
	updates []Key
	deletes []Key
}

func (r *recordingSink) Update(o Object) { r.updates = append(r.updates, o.Key()) }
func (r *recordingSink) Delete(k Key)    { r.deletes = append(r.deletes, k) }
func (r *recordingSink) MarkSynced()     {}

func TestKubeEventsSkipWhatDNSCannotUse(t *testing.T) {
	sink := &recordingSink{}
	k := &Kube{sink: sink, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := k.handler()
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "ns"} }

	h.OnAdd(&corev1.Service{ObjectMeta: meta("weird"), Spec: corev1.ServiceSpec{Type: "Teleport"}}, false)
	h.OnAdd(&discoveryv1.EndpointSlice{ObjectMeta: meta("unlabelled"), AddressType: discoveryv1.AddressTypeIPv4}, false)
	h.OnAdd(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "fqdn", Namespace: "ns",
		Labels: map[string]string{ServiceNameLabel: "x"}}, AddressType: discoveryv1.AddressTypeFQDN}, false)
	h.OnAdd(&corev1.ConfigMap{ObjectMeta: meta("cm")}, false)
	h.OnAdd(&corev1.Service{ObjectMeta: meta("good"), Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1"}}, false)
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: &corev1.Service{ObjectMeta: meta("gone")}})

	if len(sink.updates) != 1 || sink.updates[0] != (Key{KindService, "ns", "good"}) {
		t.Errorf("updates = %v, want only the good Service", sink.updates)
	}
	wantDeletes := []Key{
		{KindService, "ns", "weird"},
		{KindEndpointSlice, "ns", "unlabelled"},
		{KindEndpointSlice, "ns", "fqdn"},
		{KindService, "ns", "gone"},
	}
	if len(sink.deletes) != len(wantDeletes) {
		t.Fatalf("deletes = %v, want %v", sink.deletes, wantDeletes)
	}
	for i, k := range wantDeletes {
		if sink.deletes[i] != k {
			t.Errorf("delete %d = %v, want %v (an unusable object withdraws what it published)", i, sink.deletes[i], k)
		}
	}
}

func TestSlimKeepsWhatConversionReads(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", ResourceVersion: "7",
			Annotations:   map[string]string{tolerateUnreadyAnnotation: "true", "big": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 30080}},
			Selector: map[string]string{"app": "a"}},
	}
	before, err := FromService(svc)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := slim(svc)
	s := out.(*corev1.Service)
	after, err := FromService(s)
	if err != nil {
		t.Fatal(err)
	}
	if !equalService(before, after) {
		t.Errorf("conversion changed by slimming: %+v vs %+v", before, after)
	}
	if s.ManagedFields != nil || s.Spec.Selector != nil || s.Annotations["big"] != "" || s.ResourceVersion != "7" {
		t.Errorf("slimmed Service kept too much or lost its resource version: %+v", s)
	}
}

func equalService(a, b *Service) bool {
	if a.Name != b.Name || a.Type != b.Type || a.PublishNotReady != b.PublishNotReady || len(a.Ports) != len(b.Ports) || len(a.ClusterIPs) != len(b.ClusterIPs) {
		return false
	}
	for i := range a.Ports {
		if a.Ports[i] != b.Ports[i] {
			return false
		}
	}
	for i := range a.ClusterIPs {
		if a.ClusterIPs[i] != b.ClusterIPs[i] {
			return false
		}
	}
	return true
}
