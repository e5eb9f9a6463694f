package zones

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/miekg/dns"
)

func TestAnAddressSharedByServicesHasEveryTargetInOwnerOrder(t *testing.T) {
	z := New(testOptions())
	z.Replace([]Object{
		headless("ns", "b"), slice("ns", "b-1", "b", true, "10.0.0.7"),
		headless("ns", "a"), slice("ns", "a-1", "a", true, "10.0.0.7"),
	})
	const ptr = "7.0.0.10.in-addr.arpa."
	want := []string{"10-0-0-7.a.ns.svc.cluster.local.", "10-0-0-7.b.ns.svc.cluster.local."}
	if got := addrs(z.Lookup(ptr), dns.TypePTR); !slices.Equal(got, want) {
		t.Fatalf("PTR = %v, want %v", got, want)
	}
	z.Delete(Key{KindService, "ns", "a"})
	if got := addrs(z.Lookup(ptr), dns.TypePTR); !slices.Equal(got, want[1:]) {
		t.Fatalf("after a is deleted, PTR = %v, want %v", got, want[1:])
	}
	z.Delete(Key{KindService, "ns", "b"})
	if n := z.Lookup(ptr); n != nil {
		t.Fatalf("PTR of an address no Service publishes: %+v", n)
	}
}

func TestStampChangesWithTheRecordsOnly(t *testing.T) {
	z := New(testOptions())
	objs := []Object{headless("ns", "db"), slice("ns", "db-1", "db", true, "10.0.0.1"), headless("ns", "other")}
	z.Replace(objs)
	names := []string{"db.ns.svc.cluster.local.", "_http._tcp.db.ns.svc.cluster.local.", "10-0-0-1.db.ns.svc.cluster.local.",
		"nosuch.db.ns.svc.cluster.local.", "1.0.0.10.in-addr.arpa."}
	stamps := func() []any {
		var out []any
		for _, n := range names {
			st, stable := z.Stamp(n)
			if !stable {
				t.Fatalf("Stamp(%s) is not stable", n)
			}
			out = append(out, st)
		}
		return out
	}
	before := stamps()
	for i, st := range before {
		if st == nil && i != 3 {
			t.Errorf("Stamp(%s) = nil for a name that exists", names[i])
		}
	}
	// The same objects again, an equal copy of db's slice, and a change to
	// another Service: nothing of db's moves.
	z.Replace(objs)
	z.Update(slice("ns", "db-1", "db", true, "10.0.0.1"))
	z.Update(slice("ns", "other-1", "other", true, "10.0.0.9"))
	if after := stamps(); !slices.Equal(after, before) {
		t.Errorf("stamps moved without a change to db: %v → %v", before, after)
	}
	z.Update(slice("ns", "db-1", "db", true, "10.0.0.1", "10.0.0.2"))
	after := stamps()
	for i := range names[:4] {
		if after[i] == before[i] {
			t.Errorf("Stamp(%s) did not change with db's endpoints", names[i])
		}
	}
	// db was published again, but the PTR of 10.0.0.1 is what it was.
	if after[4] != before[4] {
		t.Errorf("Stamp(%s) moved with targets unchanged", names[4])
	}
	if _, stable := z.Stamp("10-0-0-3.ns.pod.cluster.local."); stable {
		t.Error("a pod name made up per lookup has a stable stamp")
	}
}

func TestBigServiceNamesFollowChanges(t *testing.T) {
	z := New(testOptions())
	var ips []string
	for i := range bigService + 10 {
		ips = append(ips, fmt.Sprintf("10.1.%d.%d", i/256, i%256))
	}
	z.Replace([]Object{headless("ns", "big"), slice("ns", "big-1", "big", true, ips...)})
	base := "big.ns.svc.cluster.local."
	if got := addrs(z.Lookup(base), dns.TypeA); len(got) != len(ips) {
		t.Fatalf("A has %d records, want %d", len(got), len(ips))
	}
	if got := addrs(z.Lookup("10-1-0-5."+base), dns.TypeA); !slices.Equal(got, []string{"10.1.0.5"}) {
		t.Fatalf("endpoint name: %v", got)
	}
	z.Update(slice("ns", "big-1", "big", true, ips[1:]...))
	if n := z.Lookup("10-1-0-0." + base); n != nil {
		t.Errorf("a removed endpoint's name is still answered: %+v", n)
	}
	if got := addrs(z.Lookup(base), dns.TypeA); len(got) != len(ips)-1 {
		t.Errorf("after a removal A has %d records, want %d", len(got), len(ips)-1)
	}
}

func TestNamesCountsServiceNamesAndPTRs(t *testing.T) {
	z := New(testOptions())
	empty := z.Names()
	svc := &Service{Namespace: "ns", Name: "web", Type: ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
	z.Replace([]Object{svc})
	// web, _http._tcp.web, _tcp.web, ns.svc, and the PTR.
	if got := z.Names() - empty; got != 5 {
		t.Errorf("one ClusterIP Service with a named port adds %d names, want 5", got)
	}
	z.Delete(svc.Key())
	if got := z.Names(); got != empty {
		t.Errorf("after the delete %d names, want %d", got, empty)
	}
}

func TestAnEqualServiceCopyReplacesTheOneTheViewHolds(t *testing.T) {
	z := New(testOptions())
	svc := func() *Service {
		return &Service{Namespace: "ns", Name: "web", Type: ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}}
	}
	first, second := svc(), svc()
	z.Replace([]Object{first})
	z.Replace([]Object{second}) // a relist: an equal object, a new copy
	if v := z.vi.view(nsName{"ns", "web"}); v == nil || v.svc != second {
		t.Fatal("the view still holds the first copy, which keeps both copies alive")
	}
	if got := addrs(z.Lookup("web.ns.svc.cluster.local."), dns.TypeA); !slices.Equal(got, []string{"10.96.0.10"}) {
		t.Errorf("A = %v after the relist", got)
	}
}

// TestEndpointNamesAndPTRsFollowTheirLabels walks an endpoint and its
// address through the forms its label and PTR take: spelt from the
// address (kept as nothing), a hostname, a Pod name, several Services and
// families.
func TestEndpointNamesAndPTRsFollowTheirLabels(t *testing.T) {
	a := netip.MustParseAddr
	ep := func(ip, name string, podName bool) Endpoint {
		return Endpoint{Addresses: []netip.Addr{a(ip)}, Name: name, PodName: podName, Ready: true}
	}
	sl := func(svc, name string, eps ...Endpoint) *EndpointSlice {
		return (&EndpointSlice{Namespace: "ns", Name: name, Service: svc, Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}).WithEndpoints(eps...)
	}
	clusterIP := func(name, ip string) *Service {
		return &Service{Namespace: "ns", Name: name, Type: ClusterIP, ClusterIPs: []netip.Addr{a(ip)}}
	}
	const ptr7 = "7.0.0.10.in-addr.arpa."
	const ptr6 = "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."
	type want struct {
		name string
		t    uint16
		rrs  []string // nil: the name does not exist
	}
	type step struct {
		objs []Object
		want []want
	}
	tests := []struct {
		name     string
		podNames bool
		steps    []step
	}{
		{"an endpoint goes from its dashed address to a hostname and back", false, []step{
			{[]Object{headless("ns", "db"), sl("db", "db-1", ep("10.0.0.7", "", false))}, []want{
				{"10-0-0-7.db.ns.svc.cluster.local.", dns.TypeA, []string{"10.0.0.7"}},
				{ptr7, dns.TypePTR, []string{"10-0-0-7.db.ns.svc.cluster.local."}},
				{"_http._tcp.db.ns.svc.cluster.local.", dns.TypeSRV, []string{"10-0-0-7.db.ns.svc.cluster.local."}}}},
			{[]Object{headless("ns", "db"), sl("db", "db-1", ep("10.0.0.7", "db-0", false))}, []want{
				{"10-0-0-7.db.ns.svc.cluster.local.", dns.TypeA, nil},
				{"db-0.db.ns.svc.cluster.local.", dns.TypeA, []string{"10.0.0.7"}},
				{ptr7, dns.TypePTR, []string{"db-0.db.ns.svc.cluster.local."}},
				{"_http._tcp.db.ns.svc.cluster.local.", dns.TypeSRV, []string{"db-0.db.ns.svc.cluster.local."}}}},
			{[]Object{headless("ns", "db"), sl("db", "db-1", ep("10.0.0.7", "", false))}, []want{
				{"db-0.db.ns.svc.cluster.local.", dns.TypeA, nil},
				{"10-0-0-7.db.ns.svc.cluster.local.", dns.TypeA, []string{"10.0.0.7"}},
				{ptr7, dns.TypePTR, []string{"10-0-0-7.db.ns.svc.cluster.local."}}}},
		}},
		{"a Pod name is a label with endpoint_pod_names only, and only when it is one label", true, []step{
			{[]Object{headless("ns", "db"), sl("db", "db-1", ep("10.0.0.7", "db-abcde", true), ep("10.0.0.8", "x.y", true))}, []want{
				{"db-abcde.db.ns.svc.cluster.local.", dns.TypeA, []string{"10.0.0.7"}},
				{"10-0-0-8.db.ns.svc.cluster.local.", dns.TypeA, []string{"10.0.0.8"}},
				{ptr7, dns.TypePTR, []string{"db-abcde.db.ns.svc.cluster.local."}},
				{"8.0.0.10.in-addr.arpa.", dns.TypePTR, []string{"10-0-0-8.db.ns.svc.cluster.local."}}}},
		}},
		{"without endpoint_pod_names a Pod name is no label", false, []step{
			{[]Object{headless("ns", "db"), sl("db", "db-1", ep("10.0.0.7", "db-abcde", true))}, []want{
				{"db-abcde.db.ns.svc.cluster.local.", dns.TypeA, nil},
				{ptr7, dns.TypePTR, []string{"10-0-0-7.db.ns.svc.cluster.local."}}}},
		}},
		{"an address several Services publish has every target, dashed or named, in owner order", false, []step{
			{[]Object{headless("ns", "b"), sl("b", "b-1", ep("10.0.0.7", "web", false)),
				headless("ns", "a"), sl("a", "a-1", ep("10.0.0.7", "", false)), clusterIP("c", "10.0.0.7")}, []want{
				{ptr7, dns.TypePTR, []string{"10-0-0-7.a.ns.svc.cluster.local.", "web.b.ns.svc.cluster.local.", "c.ns.svc.cluster.local."}}}},
			{[]Object{headless("ns", "b"), sl("b", "b-1", ep("10.0.0.7", "", false)), clusterIP("c", "10.0.0.7")}, []want{
				{ptr7, dns.TypePTR, []string{"10-0-0-7.b.ns.svc.cluster.local.", "c.ns.svc.cluster.local."}},
				{"8.0.0.10.in-addr.arpa.", dns.TypePTR, nil}}},
			{[]Object{clusterIP("c", "10.0.0.7")}, []want{
				{ptr7, dns.TypePTR, []string{"c.ns.svc.cluster.local."}}}},
		}},
		{"a dual-stack endpoint's hostname has both addresses", false, []step{
			{[]Object{headless("ns", "db"), sl("db", "db-4", ep("10.0.0.7", "db-0", false)), sl("db", "db-6", ep("fd00::7", "db-0", false), ep("fd00::8", "", false))}, []want{
				{"db-0.db.ns.svc.cluster.local.", dns.TypeA, []string{"10.0.0.7"}},
				{"db-0.db.ns.svc.cluster.local.", dns.TypeAAAA, []string{"fd00::7"}},
				{"fd00--8.db.ns.svc.cluster.local.", dns.TypeAAAA, []string{"fd00::8"}},
				{"db.ns.svc.cluster.local.", dns.TypeAAAA, []string{"fd00::7", "fd00::8"}},
				{"_http._tcp.db.ns.svc.cluster.local.", dns.TypeSRV, []string{"db-0.db.ns.svc.cluster.local.", "fd00--8.db.ns.svc.cluster.local."}},
				{ptr7, dns.TypePTR, []string{"db-0.db.ns.svc.cluster.local."}},
				{ptr6, dns.TypePTR, []string{"db-0.db.ns.svc.cluster.local."}}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			opts.Zones = append(opts.Zones, "ip6.arpa.")
			opts.EndpointPodNames = tt.podNames
			z := New(opts)
			for i, st := range tt.steps {
				z.Replace(st.objs)
				for _, w := range st.want {
					n := z.Lookup(w.name)
					if w.rrs == nil {
						if n != nil {
							t.Errorf("step %d: %s exists: %+v", i, w.name, n)
						}
						continue
					}
					got := addrs(n, w.t)
					if w.t == dns.TypeSRV {
						got = srvTargets(n)
					}
					if !slices.Equal(got, w.rrs) {
						t.Errorf("step %d: %s %s = %v, want %v", i, w.name, dns.TypeToString[w.t], got, w.rrs)
					}
				}
			}
		})
	}
}

func srvTargets(n *Node) []string {
	if n == nil || n.Get(dns.TypeSRV) == nil {
		return nil
	}
	var out []string
	for _, rr := range n.Get(dns.TypeSRV).RRs {
		out = append(out, rr.(*dns.SRV).Target)
	}
	return out
}

func TestServicesShareTheirPTREntries(t *testing.T) {
	z := New(testOptions())
	z.Replace([]Object{headless("ns", "db"), slice("ns", "db-1", "db", true, "10.0.0.1", "10.0.0.2")})
	one, _ := z.Stamp("1.0.0.10.in-addr.arpa.")
	two, _ := z.Stamp("2.0.0.10.in-addr.arpa.")
	if one == nil || one != two {
		t.Errorf("the dashed PTRs of one Service have entries %p and %p, want one shared", one, two)
	}
}

// PTR targets of several Services answer in the order of "<ns>/<name>",
// which byOwner gives without spelling the names.
func TestByOwnerOrdersAsTheSpeltNames(t *testing.T) {
	names := []nsName{{"a", "x"}, {"a", "y"}, {"a-b", "x"}, {"a0", "x"}, {"ab", "a"}, {"a", "b-c"}, {"b", ""}, {"", "z"}, {"a.b", "x"}}
	for _, x := range names {
		for _, y := range names {
			got := byOwner(ptrTarget{owner: &svcEntry{key: x}}, ptrTarget{owner: &svcEntry{key: y}})
			if want := strings.Compare(x.ns+"/"+x.name, y.ns+"/"+y.name); got != want {
				t.Errorf("byOwner(%v, %v) = %d, want %d", x, y, got, want)
			}
		}
	}
}

// The names made from a big Service's view are kept, once, until the
// view changes; a small Service's are made at each lookup; and a view is
// 64 bytes, not 80, for keeping them elsewhere.
func TestBigServiceKeepsItsNamesUntilItsViewChanges(t *testing.T) {
	z := New(testOptions())
	var ips []string
	for i := range bigService {
		ips = append(ips, fmt.Sprintf("10.1.%d.%d", i/256, i%256))
	}
	z.Replace([]Object{headless("ns", "big"), slice("ns", "big-1", "big", true, ips...),
		headless("ns", "small"), slice("ns", "small-1", "small", true, ips[:bigService-1]...)})
	for _, tc := range []struct {
		svc  string
		kept bool
	}{{"big", true}, {"small", false}} {
		name := tc.svc + ".ns.svc.cluster.local."
		if first, again := z.Lookup(name), z.Lookup(name); (first == again) != tc.kept {
			t.Errorf("%s: a second lookup returned the same node: %v, want %v", tc.svc, first == again, tc.kept)
		}
	}
	name := "big.ns.svc.cluster.local."
	before := z.Lookup(name)
	z.Update(headless("ns", "big")) // an equal copy: a new view, the same records
	after := z.Lookup(name)
	if after == before || !sameSets(after.Sets, before.Sets) {
		t.Errorf("after a new view: node %p (was %p), sets equal %v; want a new node, equal sets", after, before, sameSets(after.Sets, before.Sets))
	}
	if b := z.vi.entry(nsName{"ns", "big"}).big.Load(); b == nil || b.view != z.vi.view(nsName{"ns", "big"}) {
		t.Errorf("the kept names are not the current view's: %+v", b)
	}
	if n := unsafe.Sizeof(svcView{}); n > 64 {
		t.Errorf("a view is %d bytes, want at most 64", n)
	}
}
