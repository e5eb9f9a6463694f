package zones

import (
	"io"
	"log/slog"
	"reflect"
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
	handler := k.handler()
	// Events carry what the informers' transform made of the API objects.
	h := cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			o, err := slim(obj)
			if err != nil {
				t.Fatal(err)
			}
			handler.OnAdd(o, false)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				d.Obj, _ = slim(d.Obj)
				obj = d
			}
			handler.OnDelete(obj)
		},
	}
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

func TestSlimHoldsTheConvertedObjectAndItsKey(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "A", Namespace: "ns", ResourceVersion: "7",
			Annotations:   map[string]string{"big": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	out, err := slim(svc)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*slimObject)
	want, _ := FromService(svc)
	if s.err != nil || !reflect.DeepEqual(s.obj, want) {
		t.Errorf("slim object = %+v (err %v), want %+v", s.obj, s.err, want)
	}
	if s.key != (Key{KindService, "ns", "a"}) || s.GetName() != "A" || s.GetResourceVersion() != "7" {
		t.Errorf("key %v, name %q, resource version %q", s.key, s.GetName(), s.GetResourceVersion())
	}
	if s.Annotations != nil || s.ManagedFields != nil {
		t.Errorf("metadata beyond name, namespace and resource version kept: %+v", s.ObjectMeta)
	}
	if k, err := cache.MetaNamespaceKeyFunc(s); err != nil || k != "ns/A" {
		t.Errorf("informer key %q, %v", k, err)
	}
	bad, _ := slim(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}, Spec: corev1.ServiceSpec{Type: "Teleport"}})
	if b := bad.(*slimObject); b.obj != nil || b.err == nil {
		t.Errorf("an unusable Service converted to %+v, err %v", b.obj, b.err)
	}
}
