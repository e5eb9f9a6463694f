package zones

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func testOptions() Options {
	return Options{Zones: []string{"cluster.local.", "in-addr.arpa."}, TTL: 5, Pods: PodsInsecure}
}

func headless(ns, name string) *Service {
	return &Service{Namespace: ns, Name: name, Type: Headless, Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
}

func slice(ns, name, svc string, ready bool, ips ...string) *EndpointSlice {
	s := &EndpointSlice{Namespace: ns, Name: name, Service: svc, Ports: []Port{{Name: "http", Protocol: "tcp", Port: 8080}}}
	var eps []Endpoint
	for _, ip := range ips {
		eps = append(eps, Endpoint{Addresses: []netip.Addr{netip.MustParseAddr(ip)}, Ready: ready})
	}
	return s.WithEndpoints(eps...)
}

func addrs(n *Node, t uint16) []string {
	if n == nil {
		return nil
	}
	set := n.Get(t)
	if set == nil {
		return nil
	}
	var out []string
	for _, rr := range set.RRs {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.PTR:
			out = append(out, v.Ptr)
		}
	}
	return out
}

func TestReadinessFlipChangesAnswers(t *testing.T) {
	z := New(testOptions())
	z.Replace([]Object{headless("ns", "db"), slice("ns", "db-1", "db", true, "10.0.0.1")})
	const name = "db.ns.svc.cluster.local."
	if got := addrs(z.Lookup(name), dns.TypeA); len(got) != 1 || got[0] != "10.0.0.1" {
		t.Fatalf("ready endpoint: A = %v, want [10.0.0.1]", got)
	}
	z.Update(slice("ns", "db-1", "db", false, "10.0.0.1"))
	if n := z.Lookup(name); n != nil {
		t.Fatalf("not-ready endpoint still published: %+v", n)
	}
	if n := z.Lookup("1.0.0.10.in-addr.arpa."); n != nil {
		t.Fatalf("PTR of a not-ready endpoint still published: %+v", n)
	}
	z.Update(slice("ns", "db-1", "db", true, "10.0.0.1", "10.0.0.2"))
	if got := addrs(z.Lookup(name), dns.TypeA); len(got) != 2 {
		t.Fatalf("after scale-up A = %v, want two addresses", got)
	}
	if got := addrs(z.Lookup("2.0.0.10.in-addr.arpa."), dns.TypePTR); len(got) != 1 || got[0] != "10-0-0-2.db.ns.svc.cluster.local." {
		t.Fatalf("PTR = %v", got)
	}
}

func TestDeletingAServiceRemovesItsNamesOnly(t *testing.T) {
	z := New(testOptions())
	a := &Service{Namespace: "ns", Name: "a", Type: ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.1")}}
	b := &Service{Namespace: "ns", Name: "b", Type: ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.2")}}
	z.Replace([]Object{a, b})
	z.Delete(a.Key())
	for _, gone := range []string{"a.ns.svc.cluster.local.", "1.0.96.10.in-addr.arpa."} {
		if n := z.Lookup(gone); n != nil {
			t.Errorf("%s still exists after its Service was deleted", gone)
		}
	}
	for _, kept := range []string{"b.ns.svc.cluster.local.", "2.0.96.10.in-addr.arpa.", "ns.svc.cluster.local."} {
		if n := z.Lookup(kept); n == nil {
			t.Errorf("%s vanished with another Service", kept)
		}
	}
	z.Delete(b.Key())
	if n := z.Lookup("ns.svc.cluster.local."); n != nil {
		t.Errorf("namespace name outlived its last Service and had no Namespace object")
	}
}

func TestNamespaceObjectKeepsNamespaceName(t *testing.T) {
	z := New(testOptions())
	z.Replace([]Object{&Namespace{Name: "ns"}, headless("ns", "db"), slice("ns", "s", "db", true, "10.0.0.1")})
	z.Delete(Key{KindService, "ns", "db"})
	if z.Lookup("ns.svc.cluster.local.") == nil {
		t.Fatal("namespace name vanished while its Namespace exists")
	}
	z.Delete(Key{Kind: KindNamespace, Name: "ns"})
	if z.Lookup("ns.svc.cluster.local.") != nil {
		t.Fatal("namespace name outlived its Namespace")
	}
}

func TestSlicesArriveBeforeTheirService(t *testing.T) {
	z := New(testOptions())
	z.Update(slice("ns", "db-1", "db", true, "10.0.0.1"))
	if z.Lookup("db.ns.svc.cluster.local.") != nil {
		t.Fatal("a slice without its Service published a name")
	}
	z.Update(headless("ns", "db"))
	if got := addrs(z.Lookup("db.ns.svc.cluster.local."), dns.TypeA); len(got) != 1 {
		t.Fatalf("the Service did not pick up its earlier slice: A = %v", got)
	}
}

func TestSliceMovingToAnotherServiceLeavesTheOld(t *testing.T) {
	z := New(testOptions())
	z.Replace([]Object{headless("ns", "a"), headless("ns", "b"), slice("ns", "s", "a", true, "10.0.0.1")})
	z.Update(slice("ns", "s", "b", true, "10.0.0.1"))
	if z.Lookup("a.ns.svc.cluster.local.") != nil {
		t.Error("old Service still has the moved slice's endpoints")
	}
	if z.Lookup("b.ns.svc.cluster.local.") == nil {
		t.Error("new Service lacks the moved slice's endpoints")
	}
}

func TestSharedPTRNameKeepsEveryOwner(t *testing.T) {
	z := New(testOptions())
	z.Replace([]Object{headless("ns", "a"), headless("ns", "b"),
		slice("ns", "sa", "a", true, "10.0.0.1"), slice("ns", "sb", "b", true, "10.0.0.1")})
	if got := addrs(z.Lookup("1.0.0.10.in-addr.arpa."), dns.TypePTR); len(got) != 2 {
		t.Fatalf("PTR = %v, want one per Service", got)
	}
	z.Delete(Key{KindService, "ns", "a"})
	if got := addrs(z.Lookup("1.0.0.10.in-addr.arpa."), dns.TypePTR); len(got) != 1 || got[0] != "10-0-0-1.b.ns.svc.cluster.local." {
		t.Fatalf("PTR after delete = %v", got)
	}
}

func TestSerialGrowsOnChangeOnly(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	opts := testOptions()
	opts.Now = func() time.Time { return now }
	z := New(opts)
	serial := func() uint32 { return z.SOA("cluster.local.").(*dns.SOA).Serial }
	s0 := serial()
	svc := headless("ns", "db")
	z.Update(svc)
	s1 := serial()
	if s1 <= s0 {
		t.Fatalf("serial %d did not grow past %d on a change", s1, s0)
	}
	z.Update(headless("ns", "db")) // the same object again
	if s2 := serial(); s2 != s1 {
		t.Fatalf("serial moved from %d to %d without a change", s1, s2)
	}
}

func TestReplaceDropsWhatIsMissing(t *testing.T) {
	z := New(testOptions())
	z.Replace([]Object{headless("ns", "a"), slice("ns", "s", "a", true, "10.0.0.1")})
	z.Replace([]Object{headless("ns", "b"), slice("ns", "t", "b", true, "10.0.0.2")})
	if z.Lookup("a.ns.svc.cluster.local.") != nil || z.Lookup("1.0.0.10.in-addr.arpa.") != nil {
		t.Error("objects missing from Replace are still served")
	}
	if z.Lookup("b.ns.svc.cluster.local.") == nil {
		t.Error("objects in Replace are not served")
	}
}

func TestMultipleForwardZones(t *testing.T) {
	opts := testOptions()
	opts.Zones = []string{"cluster.local.", "example.org.", "in-addr.arpa."}
	z := New(opts)
	z.Replace([]Object{&Service{Namespace: "ns", Name: "a", Type: ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.1")}}})
	for _, name := range []string{"a.ns.svc.cluster.local.", "a.ns.svc.example.org."} {
		if z.Lookup(name) == nil {
			t.Errorf("%s does not exist", name)
		}
	}
	if got := addrs(z.Lookup("1.0.96.10.in-addr.arpa."), dns.TypePTR); len(got) != 1 || got[0] != "a.ns.svc.cluster.local." {
		t.Errorf("PTR = %v, want the first zone's name only", got)
	}
}

func TestInternReturnsTheHeldEqualObject(t *testing.T) {
	z := New(testOptions())
	held := headless("ns", "db")
	z.Update(held)
	if got := z.Intern(headless("ns", "db")); got != Object(held) {
		t.Error("an equal Service was not interned to the held one")
	}
	changed := headless("ns", "db")
	changed.PublishNotReady = true
	if got := z.Intern(changed); got != Object(changed) {
		t.Error("a changed Service was interned to the stale one")
	}
	fresh := headless("ns", "other")
	if got := z.Intern(fresh); got != Object(fresh) {
		t.Error("an unknown Service was not returned as is")
	}
}

func TestIPv6EndpointNamesNeverEndOrBeginWithADash(t *testing.T) {
	o := testOptions()
	o.Zones = append(o.Zones, "ip6.arpa.")
	z := New(o)
	z.Replace([]Object{headless("ns", "db"), slice("ns", "db-1", "db", true, "2001:db8::", "2001:db8::5", "::7")})
	for _, tc := range []struct{ name, addr string }{
		{"2001-db8--0.db.ns.svc.cluster.local.", "2001:db8::"},
		{"2001-db8--5.db.ns.svc.cluster.local.", "2001:db8::5"},
		{"0--7.db.ns.svc.cluster.local.", "::7"},
	} {
		if got := addrs(z.Lookup(tc.name), dns.TypeAAAA); len(got) != 1 || got[0] != tc.addr {
			t.Errorf("%s: AAAA = %v, want [%s]", tc.name, got, tc.addr)
		}
	}
	if n := z.Lookup("2001-db8--.db.ns.svc.cluster.local."); n != nil {
		t.Errorf("the name ending in a dash is published: %+v", n)
	}
	var targets []string
	for _, rr := range z.Lookup("_http._tcp.db.ns.svc.cluster.local.").Get(dns.TypeSRV).RRs {
		targets = append(targets, rr.(*dns.SRV).Target)
	}
	slices.Sort(targets)
	want := []string{"0--7.db.ns.svc.cluster.local.", "2001-db8--0.db.ns.svc.cluster.local.", "2001-db8--5.db.ns.svc.cluster.local."}
	if !slices.Equal(targets, want) {
		t.Errorf("SRV targets = %v, want %v", targets, want)
	}
	ptr, _ := dns.ReverseAddr("2001:db8::")
	if got := addrs(z.Lookup(ptr), dns.TypePTR); len(got) != 1 || got[0] != "2001-db8--0.db.ns.svc.cluster.local." {
		t.Errorf("PTR = %v, want [2001-db8--0.db.ns.svc.cluster.local.]", got)
	}
}

func TestPodNamesOfAnAddressEndingInDoubleColon(t *testing.T) {
	for _, mode := range []PodMode{PodsInsecure, PodsVerified} {
		o := testOptions()
		o.Pods = mode
		z := New(o)
		z.Replace([]Object{headless("ns", "db"), &Pod{Namespace: "ns", Name: "p", IPs: []netip.Addr{netip.MustParseAddr("2001:db8::")}}})
		// CoreDNS's form, and the bare dashed form its verified mode answers.
		for _, name := range []string{"2001-db8--0.ns.pod.cluster.local.", "2001-db8--.ns.pod.cluster.local."} {
			if got := addrs(z.Lookup(name), dns.TypeAAAA); len(got) != 1 || got[0] != "2001:db8::" {
				t.Errorf("mode %v: %s AAAA = %v, want [2001:db8::]", mode, name, got)
			}
		}
	}
}

func TestSliceSetKeepsOneSlicePerNameInNameOrder(t *testing.T) {
	sl := func(name string, n int) *EndpointSlice {
		return (&EndpointSlice{Name: name}).WithEndpoints(make([]Endpoint, n)...)
	}
	names := func(s sliceSet) (out []string) {
		for _, e := range s {
			out = append(out, fmt.Sprintf("%s/%d", e.Name, e.Len()))
		}
		return out
	}
	var s sliceSet
	for _, e := range []*EndpointSlice{sl("b", 1), sl("a", 1), sl("c", 1), sl("b", 2)} {
		s = s.with(e)
	}
	if got, want := names(s), []string{"a/1", "b/2", "c/1"}; !slices.Equal(got, want) {
		t.Errorf("after adds %v, want %v (sorted, b replaced)", got, want)
	}
	s = s.without("b").without("nope")
	if got, want := names(s), []string{"a/1", "c/1"}; !slices.Equal(got, want) {
		t.Errorf("after removals %v, want %v", got, want)
	}
	if s = s.without("a").without("c"); len(s) != 0 {
		t.Errorf("after removing all: %v", names(s))
	}
}

// TestServiceAndItsSlicesComeAndGoApart checks the one map that holds a
// Service and its slices: either may come first or outlive the other.
func TestServiceAndItsSlicesComeAndGoApart(t *testing.T) {
	z := New(testOptions())
	const name = "db.ns.svc.cluster.local."
	steps := []struct {
		name     string
		do       func()
		services int
		answer   []string
		held     int // keys in the map
	}{
		{"a slice before its Service", func() { z.Update(slice("ns", "db-1", "db", true, "10.0.0.1")) }, 0, nil, 1},
		{"the Service arrives", func() { z.Update(headless("ns", "db")) }, 1, []string{"10.0.0.1"}, 1},
		{"the Service goes, its slice stays", func() { z.Delete(Key{KindService, "ns", "db"}) }, 0, nil, 1},
		{"the Service comes back to its slice", func() { z.Update(headless("ns", "db")) }, 1, []string{"10.0.0.1"}, 1},
		{"the slice goes, the Service stays", func() { z.Delete(Key{KindEndpointSlice, "ns", "db-1"}) }, 1, nil, 1},
		{"the Service goes too", func() { z.Delete(Key{KindService, "ns", "db"}) }, 0, nil, 0},
	}
	for _, st := range steps {
		st.do()
		if got := z.Objects()[KindService]; got != st.services {
			t.Errorf("%s: %d Services, want %d", st.name, got, st.services)
		}
		if got := addrs(z.Lookup(name), dns.TypeA); !slices.Equal(got, st.answer) {
			t.Errorf("%s: A = %v, want %v", st.name, got, st.answer)
		}
		held := 0
		z.vi.entries(func(*svcEntry) { held++ })
		if held != st.held {
			t.Errorf("%s: %d keys held, want %d", st.name, held, st.held)
		}
	}
}
