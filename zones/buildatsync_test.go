package zones

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestBuildAtSyncBuildsOnceAtTheSync: after BuildAtSync, objects that arrive
// one by one are recorded, and built only every buildEvery and at
// MarkSynced; from then on each update is built as it comes.
func TestBuildAtSyncBuildsOnceAtTheSync(t *testing.T) {
	o := testOptions()
	now := time.Unix(1_700_000_000, 0)
	o.Now = func() time.Time { return now }
	z := New(o)
	z.BuildAtSync()
	z.Update(&Namespace{Name: "ns"})
	z.Update(headless("ns", "db"))
	z.Update(slice("ns", "db-1", "db", true, "10.0.0.1"))
	z.Update(slice("ns", "db-2", "db", true, "10.0.0.2"))
	z.Update(clusterIP("ns", "gone", "10.96.0.9"))
	z.Delete(Key{KindService, "ns", "gone"})
	if n := z.Lookup("db.ns.svc.cluster.local."); n != nil {
		t.Fatalf("built before the sync: %v", n)
	}
	// While the view arrives, what came is built every buildEvery.
	now = now.Add(buildEvery)
	z.Update(slice("ns", "db-2", "db", true, "10.0.0.2"))
	if got := addrs(z.Lookup("db.ns.svc.cluster.local."), dns.TypeA); len(got) != 2 {
		t.Errorf("%v into the sync: A = %v, want both endpoints", buildEvery, got)
	}
	z.Update(slice("ns", "db-4", "db", true, "10.0.0.4"))
	if got := addrs(z.Lookup("db.ns.svc.cluster.local."), dns.TypeA); len(got) != 2 {
		t.Errorf("built again within %v: A = %v", buildEvery, got)
	}
	z.Delete(Key{KindEndpointSlice, "ns", "db-4"})
	z.MarkSynced()
	if got := addrs(z.Lookup("db.ns.svc.cluster.local."), dns.TypeA); len(got) != 2 {
		t.Errorf("at the sync: A = %v, want both endpoints", got)
	}
	if n := z.Lookup("gone.ns.svc.cluster.local."); n != nil {
		t.Errorf("a Service deleted before the sync was built: %v", n)
	}
	z.Update(slice("ns", "db-3", "db", true, "10.0.0.3"))
	if got := addrs(z.Lookup("db.ns.svc.cluster.local."), dns.TypeA); len(got) != 3 {
		t.Errorf("after the sync: A = %v, want the new endpoint too", got)
	}
}

// TestBuildAtSyncWaitsForBothAServiceAndItsSlices: while the first view
// arrives, a Service is built once its object and an EndpointSlice of it
// are in, whichever came first; one without slices, at the sync.
func TestBuildAtSyncWaitsForBothAServiceAndItsSlices(t *testing.T) {
	o := testOptions()
	now := time.Unix(1_700_000_000, 0)
	o.Now = func() time.Time { return now }
	z := New(o)
	z.BuildAtSync()
	tick := func(obj Object) { // the next object, a build's time later
		now = now.Add(buildEvery)
		z.Update(obj)
	}
	tick(&Namespace{Name: "ns"})
	tick(slice("ns", "db-1", "db", true, "10.0.0.1")) // the slices first
	tick(clusterIP("ns", "web", "10.96.0.1"))         // a Service first
	tick(clusterIP("ns", "lonely", "10.96.0.2"))      // never any slice
	for _, name := range []string{"db", "web", "lonely"} {
		if n := z.Lookup(name + ".ns.svc.cluster.local."); n != nil {
			t.Errorf("%s built before both its Service and a slice were in: %v", name, n)
		}
	}
	tick(headless("ns", "db"))
	tick(slice("ns", "web-1", "web", true, "10.0.1.1"))
	tick(&Namespace{Name: "other"}) // a build's time after the last ones
	if got := addrs(z.Lookup("db.ns.svc.cluster.local."), dns.TypeA); len(got) != 1 {
		t.Errorf("db once both were in: A = %v, want its endpoint", got)
	}
	if got := addrs(z.Lookup("web.ns.svc.cluster.local."), dns.TypeA); len(got) != 1 {
		t.Errorf("web once both were in: A = %v, want its cluster IP", got)
	}
	if n := z.Lookup("lonely.ns.svc.cluster.local."); n != nil {
		t.Errorf("lonely built before the sync: %v", n)
	}
	z.MarkSynced()
	if got := addrs(z.Lookup("lonely.ns.svc.cluster.local."), dns.TypeA); len(got) != 1 {
		t.Errorf("lonely at the sync: A = %v, want its cluster IP", got)
	}
}

// BenchmarkFirstSyncObjectByObject is a watch's first view of 2,000
// Services of 5 EndpointSlices each, delivered one object at a time, built
// at each object or once at the sync.
func BenchmarkFirstSyncObjectByObject(b *testing.B) {
	var objs []Object
	for i := range 2000 {
		ns, name := fmt.Sprintf("ns-%d", i%20), fmt.Sprintf("svc-%d", i)
		objs = append(objs, headless(ns, name))
		for j := range 5 {
			objs = append(objs, slice(ns, fmt.Sprintf("%s-%d", name, j), name, true,
				fmt.Sprintf("10.%d.%d.%d", i/250, i%250, j+1)))
		}
	}
	for _, atSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("atSync=%v", atSync), func(b *testing.B) {
			for b.Loop() {
				z := New(testOptions())
				if atSync {
					z.BuildAtSync()
				}
				for _, o := range objs {
					z.Update(o)
				}
				z.MarkSynced()
			}
		})
	}
}

// BenchmarkFirstSyncBuild is the build of a first view at the sync:
// 10,000 ClusterIP Services of 10 ready endpoints each (the shape
// scalebench and hack/membench load), converted as the informers hand
// them in, built at MarkSynced. It is most of what svcdisc does beyond
// decoding before it is ready.
func BenchmarkFirstSyncBuild(b *testing.B) {
	api := apiCluster(10_000, 10)
	for b.Loop() {
		z := New(Options{Zones: []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}, TTL: 30})
		z.BuildAtSync()
		for _, o := range api {
			zo, err := FromObject(o)
			if err != nil {
				b.Fatal(err)
			}
			z.Update(zo)
		}
		z.MarkSynced()
	}
}
