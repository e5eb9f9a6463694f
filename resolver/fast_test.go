package resolver

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/internal/clustergen"
	"github.com/svcdisc/svcdisc/zones"
)

// captureWriter is a UDP dns.ResponseWriter that keeps what is written.
type captureWriter struct{ out []byte }

func (w *captureWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *captureWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
}
func (w *captureWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	w.out = b
	return err
}
func (w *captureWriter) Write(b []byte) (int, error) {
	w.out = append([]byte(nil), b...)
	return len(b), nil
}
func (w *captureWriter) Close() error        { return nil }
func (w *captureWriter) TsigStatus() error   { return nil }
func (w *captureWriter) TsigTimersOnly(bool) {}
func (w *captureWriter) Hijack()             {}

// general answers req on the general path, as the UDP server does for
// what the fast path declines.
func general(h *Handler, req []byte) []byte {
	w := &captureWriter{}
	serveGeneral(h, w, req)
	return w.out
}

// randomQuery is a query a pod might send, or not: names that exist, their
// search-path expansions, PTRs, pod names, in random letter case at times,
// random types, with or without EDNS and DO, random RD and CD bits.
func randomQuery(r *rand.Rand, names []string) []byte {
	name := names[r.IntN(len(names))]
	switch r.IntN(6) {
	case 0:
		name += "ns-" + fmt.Sprint(r.IntN(5)) + ".svc.cluster.local."
	case 1:
		name = "_http._tcp." + name
	case 2:
		name = "x" + name
	}
	if r.IntN(10) == 0 {
		name = strings.ToUpper(name[:1]) + name[1:]
	}
	types := []uint16{dns.TypeA, dns.TypeA, dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeTXT, dns.TypeMX, dns.TypeHTTPS, dns.TypeCNAME, dns.TypeSOA, dns.TypeNS, dns.TypeANY}
	m := new(dns.Msg)
	m.SetQuestion(name, types[r.IntN(len(types))])
	m.Id = uint16(r.Uint32())
	m.RecursionDesired = r.IntN(2) == 0
	m.CheckingDisabled = r.IntN(4) == 0
	switch r.IntN(4) {
	case 0:
		m.SetEdns0(1232, false)
	case 1:
		m.SetEdns0(4096, true)
	case 2:
		m.SetEdns0(512, false)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func fastTestCluster() []zones.Object {
	objs := clustergen.Generate(clustergen.Spec{Namespaces: 5, Services: 200})
	objs = append(objs, clustergen.Headless("ns-1", "hl", 0, 30, true)...)
	objs = append(objs, clustergen.Headless("ns-2", "big", 1, 200, true)...)
	objs = append(objs,
		&zones.Service{Namespace: "ns-3", Name: "ext", Type: zones.ExternalName, More: &zones.ServiceMore{ExternalName: "svc-1.ns-1.svc.cluster.local."}},
		&zones.Service{Namespace: "ns-3", Name: "out", Type: zones.ExternalName, More: &zones.ServiceMore{ExternalName: "example.com."}},
	)
	return objs
}

func zoneNames(h *Handler) []string {
	names := []string{"cluster.local.", "svc.cluster.local.", "ns-1.svc.cluster.local.", "hl.ns-1.svc.cluster.local.",
		"big.ns-2.svc.cluster.local.", "ext.ns-3.svc.cluster.local.", "out.ns-3.svc.cluster.local.",
		"10-244-0-1.ns-1.pod.cluster.local.", "dns-version.cluster.local.", "ns.dns.cluster.local."}
	for i := range 200 {
		names = append(names, fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.", i, i%5))
	}
	for _, ip := range []string{"10.96.0.5", "10.96.0.77", "10.244.0.3", "10.1.2.3"} {
		a, _ := dns.ReverseAddr(ip)
		names = append(names, a)
	}
	return names
}

// TestFastPathMatchesGeneralPath is the fast path's contract: over many
// random queries, whenever it answers, its reply is byte for byte the
// general path's; and it answers most plain cluster queries. Then the zone
// changes and the comparison runs again, so replies kept from before must
// be refreshed (new records, a new SOA serial in negative answers).
func TestFastPathMatchesGeneralPath(t *testing.T) {
	objs := fastTestCluster()
	h := newTestHandler(t, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, objs)
	z := h.blocks[0].block.Zone
	names := zoneNames(h)
	out := make([]byte, dns.MaxMsgSize)
	r := rand.New(rand.NewPCG(1, 2))
	check := func(round string) {
		fast := 0
		for range 20000 {
			req := randomQuery(r, names)
			n, ok := h.ServeFast(req, out, false)
			want := general(h, req)
			if !ok {
				continue
			}
			fast++
			if !bytes.Equal(out[:n], want) {
				var a, b dns.Msg
				_ = a.Unpack(out[:n])
				_ = b.Unpack(want)
				t.Fatalf("%s: fast path differs from the general path\nfast:\n%v\ngeneral:\n%v", round, &a, &b)
			}
		}
		if fast < 10000 {
			t.Errorf("%s: the fast path answered only %d of 20000 queries", round, fast)
		}
	}
	check("first")
	// Change a Service's address, drop another, add one, and move the
	// serial: every kept reply that changed must be rebuilt.
	time.Sleep(1100 * time.Millisecond) // the SOA serial is in seconds
	z.Update(&zones.Service{Namespace: "ns-1", Name: "svc-1", Type: zones.ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.99.0.1")}})
	z.Delete(zones.Key{Kind: zones.KindService, Namespace: "ns-2", Name: "svc-2"})
	z.Update(&zones.Service{Namespace: "ns-4", Name: "new", Type: zones.ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.99.0.2")}})
	names = append(names, "new.ns-4.svc.cluster.local.")
	check("after changes")
}

func TestFastPathShufflesAddressesWithLoadBalance(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, fastTestCluster())
	withLoadBalance(h, true)
	m := new(dns.Msg)
	m.SetQuestion("hl.ns-1.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(1232, false)
	req, _ := m.Pack()
	out := make([]byte, dns.MaxMsgSize)
	orders := map[string]bool{}
	var first []string
	for i := range 50 {
		n, ok := h.ServeFast(req, out, false)
		if !ok {
			if i == 0 {
				continue // the first query builds the reply
			}
			t.Fatal("fast path declined a headless A query")
		}
		var resp dns.Msg
		if err := resp.Unpack(out[:n]); err != nil {
			t.Fatal(err)
		}
		var ips []string
		for _, rr := range resp.Answer {
			ips = append(ips, rr.(*dns.A).A.String())
		}
		orders[strings.Join(ips, ",")] = true
		sorted := strings.Join(slices.Sorted(slices.Values(ips)), ",")
		if first == nil {
			first = []string{sorted}
		} else if sorted != first[0] {
			t.Fatalf("the set of addresses changed: %s vs %s", sorted, first[0])
		}
	}
	if len(orders) < 10 {
		t.Errorf("only %d distinct orders in 49 answers: not shuffled", len(orders))
	}
}

func TestFastPathDeclines(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, fastTestCluster())
	withLoadBalance(h, true)
	out := make([]byte, dns.MaxMsgSize)
	mk := func(f func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("svc-1.ns-1.svc.cluster.local.", dns.TypeA)
		f(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		req  []byte
	}{
		{"upper case", mk(func(m *dns.Msg) { m.Question[0].Name = "SVC-1.ns-1.svc.cluster.local." })},
		{"EDNS option (cookie)", mk(func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
		})},
		{"EDNS version 1", mk(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) })},
		{"a response", mk(func(m *dns.Msg) { m.Response = true })},
		{"opcode NOTIFY", mk(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })},
		{"class CHAOS", mk(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS })},
		{"ANY", mk(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeANY })},
		{"AXFR", mk(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAXFR })},
		{"CNAME to follow", mk(func(m *dns.Msg) { m.Question[0].Name = "ext.ns-3.svc.cluster.local." })},
		{"cut down to 512 bytes after loadbalance's shuffle", mk(func(m *dns.Msg) { m.Question[0].Name = "big.ns-2.svc.cluster.local." })},
		{"pod name made up per query", mk(func(m *dns.Msg) { m.Question[0].Name = "10-244-0-1.ns-1.pod.cluster.local." })},
		{"outside the cluster zone", mk(func(m *dns.Msg) { m.Question[0].Name = "example.com." })},
		{"too big for the EDNS buffer", mk(func(m *dns.Msg) {
			m.Question[0].Name = "big.ns-2.svc.cluster.local."
			m.SetEdns0(1232, false)
		})},
		{"trailing bytes", append(mk(func(*dns.Msg) {}), 0)},
		{"truncated", mk(func(*dns.Msg) {})[:20]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second time a kept reply would be used
				if _, ok := h.ServeFast(tt.req, out, false); ok {
					t.Fatal("fast path answered")
				}
			}
		})
	}
}

// TestFastPathCutsDownForClientsWithoutEDNS: a reply over 512 bytes is kept
// cut down too, as the general path cuts it (additional records dropped,
// then TC), and served to clients without EDNS.
func TestFastPathCutsDownForClientsWithoutEDNS(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, fastTestCluster())
	out := make([]byte, dns.MaxMsgSize)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"_http._tcp.big.ns-2.svc.cluster.local.", dns.TypeSRV}, {"big.ns-2.svc.cluster.local.", dns.TypeA}, {"_http._tcp.hl.ns-1.svc.cluster.local.", dns.TypeSRV}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		req, _ := m.Pack()
		h.ServeFast(req, out, false) // builds
		n, ok := h.ServeFast(req, out, false)
		if !ok {
			t.Fatalf("%s: not answered by the fast path", q.name)
		}
		if want := general(h, req); !bytes.Equal(out[:n], want) {
			t.Fatalf("%s: differs from the general path", q.name)
		}
		if n > dns.MinMsgSize {
			t.Fatalf("%s: %d bytes for a 512-byte client", q.name, n)
		}
	}
}

func TestFastPathDeclinesAReplyLargerThanItsBuffer(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, fastTestCluster())
	m := new(dns.Msg)
	m.SetQuestion("hl.ns-1.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(4096, false)
	req, _ := m.Pack()
	big := make([]byte, dns.MaxMsgSize)
	h.ServeFast(req, big, false) // builds
	if n, ok := h.ServeFast(req, big, false); !ok || n <= 100 {
		t.Fatalf("not answered in a large buffer: %d %v", n, ok)
	}
	if _, ok := h.ServeFast(req, make([]byte, 100), false); ok {
		t.Fatal("answered into a buffer too small for the reply")
	}
}

// TestFastPathCountsTheSearchExpansionsItServes: a client's NXDOMAIN below
// the cluster zone is a search-path expansion whichever path answers it;
// the fast path answers most of them, so it counts those it serves.
func TestFastPathCountsTheSearchExpansionsItServes(t *testing.T) {
	tests := []struct {
		name  string
		qname string
		qtype uint16
		want  int
	}{
		{"a search-path expansion, asked three times", "www.example.com.ns-1.svc.cluster.local.", dns.TypeA, 3},
		{"a Service that exists", "svc-1.ns-1.svc.cluster.local.", dns.TypeA, 0},
		{"a reverse name that does not exist", "3.2.1.10.in-addr.arpa.", dns.TypePTR, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, kubeadmOptions(), nil, fastTestCluster())
			n := 0
			h.blocks[0].block.Expansion = func() { n++ }
			req := new(dns.Msg)
			req.SetQuestion(tt.qname, tt.qtype)
			wire, err := req.Pack()
			if err != nil {
				t.Fatal(err)
			}
			out := make([]byte, dns.MaxMsgSize)
			for range 3 {
				if _, ok := h.ServeFast(wire, out, false); !ok {
					t.Fatalf("the fast path declined %s", tt.qname)
				}
			}
			if n != tt.want {
				t.Errorf("counted %d expansions, want %d", n, tt.want)
			}
		})
	}
}

// TestFastPathFollowsAPodNameThatAppears: a pod name is made up per lookup,
// so its stamp is nil like a missing name's: a kept NXDOMAIN for it must be
// dropped when the Pod (pods verified) or its namespace (insecure) arrives.
func TestFastPathFollowsAPodNameThatAppears(t *testing.T) {
	for _, mode := range []zones.PodMode{zones.PodsVerified, zones.PodsInsecure} {
		t.Run(mode.String(), func(t *testing.T) {
			opts := kubeadmOptions()
			opts.Pods = mode
			objs := []zones.Object{&zones.Namespace{Name: "shop"}}
			if mode == zones.PodsInsecure {
				objs = nil // the namespace arrives later
			}
			h := newTestHandler(t, opts, nil, objs)
			z := h.blocks[0].block.Zone
			req := new(dns.Msg)
			req.SetQuestion("10-1-0-5.shop.pod.cluster.local.", dns.TypeA)
			wire, err := req.Pack()
			if err != nil {
				t.Fatal(err)
			}
			out := make([]byte, dns.MaxMsgSize)
			rcode := func() int {
				n, ok := h.ServeFast(wire, out, false)
				if !ok {
					copy(out, general(h, wire))
					n = len(out)
				}
				var m dns.Msg
				if err := m.Unpack(out[:n]); err != nil {
					t.Fatal(err)
				}
				return m.Rcode
			}
			for range 2 {
				if got := rcode(); got != dns.RcodeNameError {
					t.Fatalf("before: %s, want NXDOMAIN", dns.RcodeToString[got])
				}
			}
			if mode == zones.PodsInsecure {
				z.Update(&zones.Namespace{Name: "shop"})
			} else {
				z.Update(&zones.Pod{Namespace: "shop", Name: "web-0", IPs: []netip.Addr{netip.MustParseAddr("10.1.0.5")}, Running: true})
			}
			if got := rcode(); got != dns.RcodeSuccess {
				t.Errorf("after it appeared: %s, want NOERROR", dns.RcodeToString[got])
			}
		})
	}
}
