package zones

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
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
	inf, err := k.newInformer(&cache.ListWatch{}, &corev1.Service{}, "services", "")
	if err != nil {
		t.Fatal(err)
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "ns"} }

	inf.deliver(&corev1.Service{ObjectMeta: meta("weird"), Spec: corev1.ServiceSpec{Type: "Teleport"}})
	inf.deliver(&discoveryv1.EndpointSlice{ObjectMeta: meta("unlabelled"), AddressType: discoveryv1.AddressTypeIPv4})
	inf.deliver(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "fqdn", Namespace: "ns",
		Labels: map[string]string{ServiceNameLabel: "x"}}, AddressType: discoveryv1.AddressTypeFQDN})
	inf.deliver(&corev1.ConfigMap{ObjectMeta: meta("cm")})
	inf.deliver(&corev1.Service{ObjectMeta: meta("good"), Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1"}})
	inf.remove(&corev1.Service{ObjectMeta: meta("gone")})

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
		ObjectMeta: metav1.ObjectMeta{Name: "A", Namespace: "ns", ResourceVersion: "7", UID: "u",
			Labels:        map[string]string{"app": "a"},
			Annotations:   map[string]string{"big": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	out, why := slim(svc)
	if why != nil {
		t.Fatal(why)
	}
	s := out.(*slimObject)
	want, _ := FromService(svc)
	if !reflect.DeepEqual(s.obj, want) {
		t.Errorf("slim object = %+v, want %+v", s.obj, want)
	}
	if s.key() != (Key{KindService, "ns", "a"}) || s.names == nil || *s.names != [2]string{"ns", "A"} {
		t.Errorf("key %v, names %v; want the zone's key and the API server's spelling", s.key(), s.names)
	}
	bad, why := slim(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}, Spec: corev1.ServiceSpec{Type: "Teleport"}})
	if b := bad.(*slimObject); b.obj != nil || why == nil {
		t.Errorf("an unusable Service converted to %+v, why %v", b.obj, why)
	}
	if b := bad.(*slimObject); b.key() != (Key{KindService, "ns", "b"}) {
		t.Errorf("an unusable Service has the key %v; its deletion needs ns/b", b.key())
	}
}

func TestSlimObjectKeepsNoNamesItsObjectSpells(t *testing.T) {
	lower := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", ResourceVersion: "7"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1"}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", ResourceVersion: "8"}}
	for _, obj := range []runtime.Object{lower, ns} {
		out, _ := slim(obj)
		s := out.(*slimObject)
		m := obj.(metav1.Object)
		if s.names != nil {
			t.Errorf("%s keeps names %v its object spells", m.GetName(), *s.names)
		}
		if k := s.key(); k.Namespace != m.GetNamespace() || k.Name != m.GetName() {
			t.Errorf("%s has the key %v", m.GetName(), k)
		}
	}
}

func TestTransformLogsWhatItCannotPublish(t *testing.T) {
	var logs bytes.Buffer
	k := &Kube{sink: &recordingSink{}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	out, err := k.slim(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}, Spec: corev1.ServiceSpec{Type: "Teleport"}})
	if err != nil {
		t.Fatalf("transform failed: %v (it would stop the informer)", err)
	}
	if s, ok := out.(*slimObject); !ok || s.obj != nil {
		t.Errorf("transform = %+v, want a slim object publishing nothing", out)
	}
	if !strings.Contains(logs.String(), "object skipped") || !strings.Contains(logs.String(), "Service ns/b") {
		t.Errorf("log %q does not name the skipped Service", logs.String())
	}

	// Transformed again (the reflector's queue transforms what its
	// watch-list store did): passed through as it is, logged once.
	logs.Reset()
	if again, err := k.slim(out); err != nil || again != out {
		t.Errorf("transforming a slim object again gave %p (%v), want it unchanged %p", again, err, out)
	}
	pending, _ := k.slim(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}) // no IP yet
	if s, ok := pending.(*slimObject); !ok || s.obj != nil {
		t.Errorf("a Pod without an IP transformed to %+v", pending)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %q; a slim object again, or a Pod without an IP, is nothing to warn about", logs.String())
	}
}

// internSink records like recordingSink and holds what it got, interning
// as a Zone does.
type internSink struct {
	mu   sync.Mutex
	held map[Key]Object
	ops  []string
}

func (s *internSink) Update(o Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[o.Key()] = o
	s.ops = append(s.ops, "update "+o.Key().String())
}

func (s *internSink) Delete(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, k)
	s.ops = append(s.ops, "delete "+k.String())
}

func (s *internSink) MarkSynced() {}

func (s *internSink) Intern(o Object) Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held[o.Key()]; h != nil && reflect.DeepEqual(h, o) {
		return h
	}
	return o
}

func (s *internSink) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ops)
}

// holdingSink is an internSink that says what it holds, as a Zone does:
// the source then keeps no keys of its own.
type holdingSink struct{ *internSink }

func (s holdingSink) EachHeld(kind Kind, ns string, f func(Key)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.held {
		if k.Kind == kind && (ns == "" || k.Namespace == ns) {
			f(k)
		}
	}
}

// heldKeys collects what EachHeld calls f with, as "namespace/name".
func heldKeys(h holder, kind Kind, ns string) []string {
	var keys []string
	h.EachHeld(kind, ns, func(k Key) {
		if k.Namespace == "" {
			keys = append(keys, k.Name)
			return
		}
		keys = append(keys, k.Namespace+"/"+k.Name)
	})
	slices.Sort(keys)
	return keys
}

func (s holdingSink) Holds(o Object) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[o.Key()] == o
}

// The source's informers, which keep no store, keep client-go's
// semantics: a watch update reaches the sink, and a relist that no longer
// lists an object deletes it (the sink, or the source's keys, say it was
// there) and hands the others in again, interned. A sink that holds the
// very object an event brings (an update equal for DNS) is not told.
func TestInformerUpdatesRelistsAndDeletesWithoutAStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		sink func(*internSink) EventSink
		// want is the sink's log: the first list, the watch update, the
		// relist. Within one list, the order is the informer's.
		want  [][]string
		store bool // the source keeps the keys
	}{
		{
			name: "sink that cannot say what it holds",
			sink: func(s *internSink) EventSink { return s },
			want: [][]string{{"update Service ns/a", "update Service ns/b"}, {"update Service ns/a"},
				{"delete Service ns/b", "update Service ns/a"}},
			store: true,
		},
		{
			name: "sink that holds the objects",
			sink: func(s *internSink) EventSink { return holdingSink{s} },
			want: [][]string{{"update Service ns/a", "update Service ns/b"}, {},
				{"delete Service ns/b", "update Service ns/a"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			service := func(name, rv, ip string) *corev1.Service {
				return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: rv},
					Spec: corev1.ServiceSpec{ClusterIP: ip}}
			}
			var mu sync.Mutex
			lists := [][]corev1.Service{
				{*service("a", "1", "10.96.0.1"), *service("b", "2", "10.96.0.2")},
				{*service("a", "3", "10.96.0.3")}, // after the watch broke: b is gone
			}
			next := func() []corev1.Service {
				mu.Lock()
				defer mu.Unlock()
				items := lists[0]
				if len(lists) > 1 {
					lists = lists[1:]
				}
				return items
			}
			watchers := make(chan *watch.FakeWatcher, 2)
			lw := &cache.ListWatch{
				ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
					items := next()
					return &corev1.ServiceList{ListMeta: metav1.ListMeta{ResourceVersion: items[len(items)-1].ResourceVersion}, Items: items}, nil
				},
				// A watch-list stream, as the API server sends it: the
				// objects, then a bookmark that ends the initial events.
				WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
					w := watch.NewFakeWithChanSize(10, false)
					if o.SendInitialEvents != nil && *o.SendInitialEvents {
						items := next()
						for i := range items {
							w.Add(&items[i])
						}
						w.Action(watch.Bookmark, &corev1.Service{ObjectMeta: metav1.ObjectMeta{
							ResourceVersion: items[len(items)-1].ResourceVersion,
							Annotations:     map[string]string{metav1.InitialEventsAnnotationKey: "true"}}})
					}
					watchers <- w
					return w, nil
				},
			}
			held := &internSink{held: map[Key]Object{}}
			k := &Kube{sink: tc.sink(held), log: slog.New(slog.DiscardHandler)}
			inf, err := k.newInformer(lw, &corev1.Service{}, "services", "")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go inf.RunWithContext(ctx)

			var want []string
			waitFor := func(what string, part []string) {
				t.Helper()
				want = append(want, part...)
				for range 500 {
					if len(held.log()) >= len(want) {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				got := held.log()
				if len(got) != len(want) {
					t.Fatalf("%s: sink got %q, want %q", what, got, want)
				}
				got, part = got[len(got)-len(part):], slices.Clone(part)
				slices.Sort(got)
				slices.Sort(part)
				if !slices.Equal(got, part) {
					t.Fatalf("%s: sink got %q, want %q", what, held.log(), want)
				}
			}
			waitFor("first list", tc.want[0])
			if !inf.HasSynced() {
				t.Error("not synced once the first list reached the sink")
			}
			a := held.held[Key{KindService, "ns", "a"}]

			w := <-watchers
			w.Modify(service("a", "2", "10.96.0.1")) // a new version, equal for DNS
			if len(tc.want[1]) == 0 {
				// Nothing to wait for: a change behind it shows it passed.
				w.Modify(service("b", "4", "10.96.0.4"))
				tc.want[1] = []string{"update Service ns/b"}
			}
			waitFor("watch update", tc.want[1])
			if got := held.held[Key{KindService, "ns", "a"}]; got != a {
				t.Errorf("an equal object was not interned: %p, want the held %p", got, a)
			}

			// The version the watch was at is gone (the API server
			// restarted with a compacted history, say): the informer
			// lists again.
			w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old"})
			waitFor("relist", tc.want[2])
			if s := held.held[Key{KindService, "ns", "a"}].(*Service); s.ClusterIPs[0].String() != "10.96.0.3" {
				t.Errorf("after the relist a is %v, want the listed 10.96.0.3", s.ClusterIPs)
			}
			if got := len(heldKeys(&k.tracker, KindService, "")); (got > 0) != tc.store {
				t.Errorf("the source keeps %d keys; want them kept only for a sink that cannot list its own", got)
			}
		})
	}
}

// What the zone holds is what a relist is reconciled against: per kind,
// within the namespace an informer watches, and the object itself, not
// an equal copy, is what needs no delivery.
func TestZoneSaysWhatItHolds(t *testing.T) {
	z := New(Options{Zones: []string{"cluster.local."}, TTL: 5, Pods: PodsVerified})
	svc := &Service{Namespace: "a", Name: "web", Type: ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.1")}}
	z.Replace([]Object{
		svc,
		&Service{Namespace: "b", Name: "web", Type: Headless},
		&EndpointSlice{Namespace: "a", Name: "web-1", Service: "web"},
		&EndpointSlice{Namespace: "a", Name: "orphan-1", Service: "orphan"}, // a slice without its Service
		&Pod{Namespace: "b", Name: "p", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
		&Namespace{Name: "a"},
	})
	for _, tc := range []struct {
		kind Kind
		ns   string
		want []string
	}{
		{KindService, "", []string{"a/web", "b/web"}},
		{KindService, "a", []string{"a/web"}},
		{KindEndpointSlice, "", []string{"a/orphan-1", "a/web-1"}},
		{KindEndpointSlice, "b", nil},
		{KindPod, "", []string{"b/p"}},
		{KindNamespace, "", []string{"a"}},
	} {
		got := heldKeys(z, tc.kind, tc.ns)
		if !slices.Equal(got, tc.want) {
			t.Errorf("EachHeld(%v, %q) gave %q, want %q", tc.kind, tc.ns, got, tc.want)
		}
	}
	if !z.Holds(svc) {
		t.Error("the zone does not hold the Service it was given")
	}
	if c := *svc; z.Holds(&c) {
		t.Error("the zone holds an equal copy of what it was given: delivering the copy would be skipped")
	}
	if z.Holds(&Namespace{Name: "gone"}) {
		t.Error("the zone holds a Namespace it never got")
	}
}

func TestTransformKeepsPodNamesOnlyForEndpointPodNames(t *testing.T) {
	pod := "web-7d9f8b6c5d-x2b4k"
	slice := func() *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "ns", Labels: map[string]string{ServiceNameLabel: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.1"},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod}}},
		}
	}
	for _, keep := range []bool{false, true} {
		k := &Kube{sink: &recordingSink{}, opts: KubeOptions{EndpointPodNames: keep}, log: slog.New(slog.DiscardHandler)}
		out, err := k.slim(slice())
		if err != nil {
			t.Fatal(err)
		}
		ep := out.(*slimObject).obj.(*EndpointSlice).Endpoints()[0]
		got := ep.Name
		if want := map[bool]string{false: "", true: pod}[keep]; got != want || ep.PodName != keep {
			t.Errorf("endpoint_pod_names %v: pod name %q, want %q", keep, got, want)
		}
	}
}
