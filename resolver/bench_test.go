package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/internal/clustergen"
)

// BenchmarkAnswer measures the answer path, from a parsed query to packed
// response bytes, in a cluster of 10,000 Services.
func BenchmarkAnswer(b *testing.B) {
	objs := clustergen.Generate(clustergen.Spec{Namespaces: 100, Services: 10_000})
	objs = append(objs, clustergen.Headless("ns-7", "hl", 0, 100, true)...)
	h := newTestHandler(b, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, objs)
	cases := []struct {
		name, qname string
		qtype       uint16
		rcode       int
	}{
		{"ClusterIP_A", "svc-4242.ns-42.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess},
		{"Headless100_SRV", "_http._tcp.hl.ns-7.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess},
		{"Ndots5_NXDOMAIN", "svc-4242.ns-42.svc.cluster.local.ns-42.svc.cluster.local.", dns.TypeA, dns.RcodeNameError},
		{"PTR", "66.16.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			r := new(dns.Msg)
			r.SetQuestion(tc.qname, tc.qtype)
			r.SetEdns0(1232, false)
			m, _ := h.answer(r)
			if m.Rcode != tc.rcode {
				b.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			b.ReportAllocs()
			for b.Loop() {
				m, _ := h.answer(r)
				if _, err := pack(m, 1232); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCachedForwardedAnswer measures a forwarded name answered from the
// cache: the path of every repeated external query.
func BenchmarkCachedForwardedAnswer(b *testing.B) {
	h := newTestHandler(b, kubeadmOptions(), nil, nil)
	withForward(h, &fakeUpstream{})
	withCache(h, cache.New(cache.Options{}))
	r := new(dns.Msg)
	r.SetQuestion("www.example.com.", dns.TypeA)
	r.SetEdns0(1232, false)
	h.answer(r) // fills the cache
	b.ReportAllocs()
	for b.Loop() {
		m, _ := h.answer(r)
		if len(m.Answer) != 1 {
			b.Fatal("no cached answer")
		}
		if _, err := pack(m, 1232); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeFast measures the fast path: a packed query in, the packed
// reply out, for a ClusterIP name and a search-path NXDOMAIN.
func BenchmarkServeFast(b *testing.B) {
	objs := clustergen.Generate(clustergen.Spec{Namespaces: 100, Services: 10_000})
	h := newTestHandler(b, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, objs)
	withLoadBalance(h, true)
	for _, tc := range []struct{ name, qname string }{
		{"ClusterIP_A", "svc-4242.ns-42.svc.cluster.local."},
		{"Ndots5_NXDOMAIN", "svc-4242.ns-42.svc.cluster.local.ns-42.svc.cluster.local."},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := new(dns.Msg)
			r.SetQuestion(tc.qname, dns.TypeA)
			req, err := r.Pack()
			if err != nil {
				b.Fatal(err)
			}
			out := make([]byte, dns.MaxMsgSize)
			if _, ok := h.ServeFast(req, out, false); !ok {
				if _, ok := h.ServeFast(req, out, false); !ok {
					b.Fatal("not answered by the fast path")
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := h.ServeFast(req, out, false); !ok {
					b.Fatal("fast path declined")
				}
			}
		})
	}
}
