package autopath

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/plugin/kubernetes"
	"github.com/svcdisc/svcdisc/zones"
)

// upstream is a forward stand-in: a fixed answer for api.github.com,
// NXDOMAIN for other names, with no parsing on the way.
type upstream struct{ a dns.RR }

func (u upstream) Name() string { return "forward" }

func (u upstream) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	m := st.Reply()
	st.By = "forward"
	if st.Name == "api.github.com." && st.Type == dns.TypeA {
		m.Answer = []dns.RR{u.a}
		return m
	}
	m.Rcode = dns.RcodeNameError
	return m
}

// benchChain is autopath @kubernetes in front of the real kubernetes
// handler (a zone with namespace shop and its Pod 10.0.0.1), then the
// upstream stand-in.
func benchChain() (ap plugin.Handler, k plugin.Handler) {
	z := clusterZone(true, &zones.Namespace{Name: "shop"}, pod("shop", "cart-0", "10.0.0.1"))
	k = kubernetes.New(z, nil, upstream{a: mustRR("api.github.com. 60 IN A 192.0.2.1")})
	h := &Handler{Zones: plugin.Zones{"."}, Pods: z, Next: k}
	h.Lookup = func(ctx context.Context, st *plugin.State, name string, qtype uint16) *dns.Msg {
		return h.ServeDNS(ctx, plugin.LookupState(st, name, qtype, "."))
	}
	return h, k
}

func benchServe(b *testing.B, h plugin.Handler, client string, want int, answers int) {
	r := new(dns.Msg)
	r.SetQuestion("api.github.com.shop.svc.cluster.local.", dns.TypeA)
	remote := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(client), 40000))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m := h.ServeDNS(ctx, plugin.NewState(r, ".", remote, "udp"))
		if m.Rcode != want || len(m.Answer) != answers {
			b.Fatalf("rcode %d, %d answers", m.Rcode, len(m.Answer))
		}
	}
}

// BenchmarkCompleted: the first query of a client Pod for an external name,
// completed (three cluster NXDOMAINs, then the upstream's answer) into a
// CNAME and the A record.
func BenchmarkCompleted(b *testing.B) {
	ap, _ := benchChain()
	benchServe(b, ap, "10.0.0.1", dns.RcodeSuccess, 2)
}

// BenchmarkPlainNXDOMAIN: the same query answered by the kubernetes
// handler alone (no autopath): the NXDOMAIN each search-path query gets.
func BenchmarkPlainNXDOMAIN(b *testing.B) {
	_, k := benchChain()
	benchServe(b, k, "10.0.0.1", dns.RcodeNameError, 0)
}

// BenchmarkSkipped: the query through autopath from an address that is no
// Pod's: the NXDOMAIN and the index lookup.
func BenchmarkSkipped(b *testing.B) {
	ap, _ := benchChain()
	benchServe(b, ap, "10.0.0.2", dns.RcodeNameError, 0)
}
