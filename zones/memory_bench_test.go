package zones

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"runtime"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// apiCluster is n ClusterIP Services (ports http and grpc), each with one
// EndpointSlice of perSvc ready endpoints, as an API server lists them:
// the shape hack/membench loads. (internal/clustergen imports this
// package, so it cannot be used here.)
func apiCluster(n, perSvc int) []kruntime.Object {
	ready := true
	tcp := corev1.ProtocolTCP
	objs := make([]kruntime.Object, 0, 2*n)
	for i := range n {
		ns, name := fmt.Sprintf("ns-%d", i%100), fmt.Sprintf("svc-%d", i)
		meta := metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: fmt.Sprint(1000 + 2*i),
			UID: "6f1c1d0e-7d3a-4f39-9a43-000000000000", Labels: map[string]string{"app": name}}
		ip := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		objs = append(objs, &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: ip.String(), ClusterIPs: []string{ip.String()},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: tcp}, {Name: "grpc", Port: 9090, Protocol: tcp}},
		}})
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-abcde", ResourceVersion: fmt.Sprint(1001 + 2*i),
				Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		for _, p := range []struct {
			name string
			port int32
		}{{"http", 80}, {"grpc", 9090}} {
			sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: &p.name, Port: &p.port, Protocol: &tcp})
		}
		for j := range perSvc {
			a := netip.AddrFrom4([4]byte{10, byte(128 + i>>16), byte(i >> 8), byte(i)}).As4()
			a[1] += byte(j * 4)
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{netip.AddrFrom4(a).String()},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			})
		}
		objs = append(objs, sl)
	}
	return objs
}

// heldSink is a sink that already holds every object: Intern hands back
// its copy, as the zone does on a relist.
type heldSink struct {
	recordingSink
	held map[Key]Object
}

func (h *heldSink) Intern(o Object) Object {
	if held := h.held[o.Key()]; held != nil {
		return held
	}
	return o
}

// BenchmarkSourceMemory reports what a zone fed by the Kubernetes source
// holds per Service once synced, the source's informers included
// (source-bytes/service): 10,000 ClusterIP Services, each with one
// EndpointSlice of no endpoints, streamed as a watch-list is, at the
// 10,000 Services of BenchmarkZoneMemory. What the API objects take is
// not counted: they are garbage once converted.
func BenchmarkSourceMemory(b *testing.B) {
	const services = 10_000
	api := apiCluster(services, 0)
	for b.Loop() {
		before := heap()
		z := New(Options{Zones: []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}, TTL: 30})
		src := startSource(b, &Kube{sink: z, log: slog.New(slog.DiscardHandler)}, api)
		z.MarkSynced()
		src.stop()
		after := heap()
		runtime.KeepAlive(z)
		b.ReportMetric(float64(after-before)/services, "source-bytes/service")
	}
}

// source is the Kubernetes source's informers running on streamed
// listings, one per kind, synced.
type source struct {
	lists []*streamedList // Services, EndpointSlices
	stop  func()
}

// startSource runs k's informers for the Services and EndpointSlices of
// api, each listed by a watch-list stream, and returns once they synced.
func startSource(b *testing.B, k *Kube, api []kruntime.Object) source {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var synced []cache.InformerSynced
	var src source
	for _, example := range []kruntime.Object{&corev1.Service{}, &discoveryv1.EndpointSlice{}} {
		var items []kruntime.Object
		for _, o := range api {
			if reflect.TypeOf(o) == reflect.TypeOf(example) {
				items = append(items, o)
			}
		}
		l := &streamedList{example: example, items: items}
		src.lists = append(src.lists, l)
		inf, err := k.newInformer(l.listerWatcher(), example, fmt.Sprintf("%T", example), "")
		if err != nil {
			b.Fatal(err)
		}
		synced = append(synced, inf.HasSynced)
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	cache.WaitForCacheSync(ctx.Done(), synced...)
	src.stop = func() { cancel(); wg.Wait() }
	return src
}

// streamedList serves items as a watch-list stream (the objects, then the
// bookmark that ends the initial events; the watch then stays quiet), and
// again each time expire ends the current watch with 410 Gone.
type streamedList struct {
	example kruntime.Object
	items   []kruntime.Object
	mu      sync.Mutex
	w       *watch.FakeWatcher
}

func (l *streamedList) expire() {
	l.mu.Lock()
	w := l.w
	l.mu.Unlock()
	w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old"})
}

func (l *streamedList) listerWatcher() cache.ListerWatcher {
	return &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (kruntime.Object, error) {
			return nil, errors.New("list: this source streams")
		},
		WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w := watch.NewFakeWithChanSize(len(l.items)+2, false)
			if o.SendInitialEvents != nil && *o.SendInitialEvents {
				for _, it := range l.items {
					w.Add(it)
				}
				bookmark := l.example.DeepCopyObject()
				m := bookmark.(metav1.Object)
				m.SetResourceVersion("999999999")
				m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
				w.Action(watch.Bookmark, bookmark)
			}
			l.mu.Lock()
			l.w = w
			l.mu.Unlock()
			return w, nil
		},
	}
}

// statefulSets turns the Services of api (apiCluster) into headless ones
// whose endpoints have hostnames, as a StatefulSet's: the uncommon form,
// whose labels a view keeps.
func statefulSets(api []kruntime.Object) []kruntime.Object {
	for _, o := range api {
		switch o := o.(type) {
		case *corev1.Service:
			o.Spec.ClusterIP, o.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
		case *discoveryv1.EndpointSlice:
			for j := range o.Endpoints {
				h := fmt.Sprintf("%s-%d", o.Labels[discoveryv1.LabelServiceName], j)
				o.Endpoints[j].Hostname = &h
			}
		}
	}
	return api
}

// BenchmarkZoneMemory reports what the zone holds per Service (with its
// EndpointSlice, no endpoints) and per further endpoint, for Services with
// two named ports, at 10,000 Services: the objects, their views, the names
// and PTRs. ClusterIP is the common shape: endpoints of one IPv4 address,
// ready, without hostname; StatefulSet the headless Services whose
// endpoints have hostnames. A note, not an assertion: map growth makes the
// numbers step with the cluster's size.
func BenchmarkZoneMemory(b *testing.B) {
	const services, perSvc = 10_000, 10
	zoneBytes := func(api []kruntime.Object) uint64 {
		objs := make([]Object, 0, len(api))
		for _, o := range api {
			zo, err := FromObject(o)
			if err != nil {
				b.Fatal(err)
			}
			objs = append(objs, zo)
		}
		before := heap()
		z := New(Options{Zones: []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}, TTL: 30})
		z.Replace(objs)
		objs = nil
		after := heap()
		runtime.KeepAlive(z)
		// The objects were live before and are the zone's after: add them.
		return after - before + objectsBytes(api)
	}
	for _, shape := range []struct {
		name string
		make func(n, perSvc int) []kruntime.Object
	}{
		{"ClusterIP", apiCluster},
		{"StatefulSet", func(n, perSvc int) []kruntime.Object { return statefulSets(apiCluster(n, perSvc)) }},
	} {
		b.Run(shape.name, func(b *testing.B) {
			empty, full := shape.make(services, 0), shape.make(services, perSvc)
			for b.Loop() {
				e, f := zoneBytes(empty), zoneBytes(full)
				b.ReportMetric(float64(e)/services, "zone-bytes/service")
				b.ReportMetric(float64(f-e)/(services*perSvc), "zone-bytes/endpoint")
			}
		})
	}
}

// objectsBytes is the heap the slim forms of api take.
func objectsBytes(api []kruntime.Object) uint64 {
	before := heap()
	objs := make([]Object, len(api))
	for i, o := range api {
		objs[i], _ = FromObject(o)
	}
	after := heap()
	runtime.KeepAlive(objs)
	return after - before - uint64(len(objs))*16
}

// BenchmarkRelistGarbage is what a relist allocates per object beyond
// decoding it, and what it holds beside the zone: 10,000 Services and
// their EndpointSlices (10 endpoints each) are synced from watch-list
// streams, then each informer's watch expires and it streams everything
// again, its last object changed. As that one arrives, the live heap is
// read (relist-live-bytes: over the heap before, per object; the objects
// streamed are the test's, alive throughout). Each object reaches the
// zone as it comes, and the relist keeps only a hash of its key.
func BenchmarkRelistGarbage(b *testing.B) {
	const services = 10_000
	api := apiCluster(services, 10)
	for b.Loop() {
		z := New(Options{Zones: []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}, TTL: 30})
		sink := &signalSink{Zone: z, seen: make(chan uint64, 2)}
		src := startSource(b, &Kube{sink: sink, log: slog.New(slog.DiscardHandler)}, api)
		z.MarkSynced()
		lasts := make([]kruntime.Object, len(src.lists))
		for i, l := range src.lists {
			lasts[i] = l.items[len(l.items)-1]
			changed := lasts[i].DeepCopyObject()
			switch o := changed.(type) {
			case *corev1.Service:
				o.Spec.Ports = o.Spec.Ports[:1]
			case *discoveryv1.EndpointSlice:
				o.Endpoints = o.Endpoints[:1]
			}
			l.items[len(l.items)-1] = changed
			k, _ := slim(changed)
			sink.watch(k.(*slimObject).key())
		}
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		for _, l := range src.lists {
			l.expire()
		}
		var live uint64 // the most live as a listing's last object arrived
		for range src.lists {
			live = max(live, <-sink.seen)
		}
		runtime.ReadMemStats(&ms1)
		src.stop()
		for i, l := range src.lists {
			l.items[len(l.items)-1] = lasts[i]
		}
		objects := float64(len(api))
		b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/objects, "relist-alloc-bytes/object")
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/objects, "relist-allocs/object")
		b.ReportMetric((float64(live)-float64(ms0.HeapAlloc))/objects, "relist-live-bytes/object")
	}
}

// signalSink is a Zone that sends the live heap on seen when an object it
// watches for is updated.
type signalSink struct {
	*Zone
	mu   sync.Mutex
	keys map[Key]bool
	seen chan uint64
}

func (s *signalSink) watch(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = make(map[Key]bool)
	}
	s.keys[k] = true
}

func (s *signalSink) Update(o Object) {
	s.Zone.Update(o)
	s.mu.Lock()
	hit := s.keys[o.Key()]
	s.mu.Unlock()
	if hit {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.seen <- ms.HeapAlloc
	}
}
