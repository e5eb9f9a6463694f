package k8sexternal

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/zones"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// testZone is a cluster with: ns/lb (external IPs and a port), ns/v6 (an
// IPv6 load balancer), ns/host (a load balancer hostname), ns/db
// (headless, one ready endpoint "db-0"), ns/plain (ClusterIP only), and
// kube-system/kube-dns with an external IP.
func testZone(t *testing.T) *zones.Zone {
	t.Helper()
	z := zones.New(zones.Options{Zones: []string{"cluster.local."}, TTL: 30})
	http := []zones.Port{{Name: "http", Protocol: "tcp", Port: 80}}
	svc := func(ns, name string, typ zones.ServiceType) *zones.Service {
		s := &zones.Service{Namespace: ns, Name: name, Type: typ, Ports: http}
		if typ == zones.ClusterIP {
			s.ClusterIPs = []netip.Addr{addr("10.96.0.9")}
		}
		return s
	}
	lb := svc("ns", "lb", zones.ClusterIP)
	lb.More = &zones.ServiceMore{ExternalIPs: []netip.Addr{addr("192.0.2.1"), addr("192.0.2.2")}}
	v6 := svc("ns", "v6", zones.ClusterIP)
	v6.More = &zones.ServiceMore{ExternalIPs: []netip.Addr{addr("2001:db8::1")}}
	host := svc("ns", "host", zones.ClusterIP)
	host.More = &zones.ServiceMore{ExternalHosts: []string{"lb.example.net."}}
	dnsSvc := svc("kube-system", "kube-dns", zones.ClusterIP)
	dnsSvc.More = &zones.ServiceMore{ExternalIPs: []netip.Addr{addr("198.51.100.53")}}
	db := svc("ns", "db", zones.Headless)
	sl := (&zones.EndpointSlice{Namespace: "ns", Name: "db-1", Service: "db", Ports: http}).WithEndpoints(
		zones.Endpoint{Addresses: []netip.Addr{addr("10.0.0.1")}, Name: "db-0", Ready: true})
	z.Replace([]zones.Object{lb, v6, host, dnsSvc, db, sl, svc("ns", "plain", zones.ClusterIP), &zones.Namespace{Name: "empty"}})
	z.MarkSynced()
	return z
}

// next answers every query it gets with rcode 3 and no records, marked so
// that a test sees the query was handed on.
type next struct{}

func (next) Name() string { return "next" }
func (next) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	return st.Error("next", dns.RcodeRefused)
}

type exchange struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	answer []string // records as dns.RR.String(), in order
	ns     []string // types of the authority records
	extra  []string
	passed bool // handed on to next
}

func run(t *testing.T, h *Handler, tests []exchange) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := new(dns.Msg)
			r.SetQuestion(tt.qname, tt.qtype)
			st := plugin.NewState(r, ".", nil, "udp")
			m := h.ServeDNS(context.Background(), st)
			if tt.passed {
				if st.By != "next" {
					t.Fatalf("answered by %q, want it handed on", st.By)
				}
				return
			}
			if st.By != Name {
				t.Fatalf("answered by %q, want %s", st.By, Name)
			}
			if m.Rcode != tt.rcode || !m.Authoritative {
				t.Errorf("rcode %s aa %v, want %s aa", dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[tt.rcode])
			}
			if got := strs(m.Answer); !slices.Equal(got, tt.answer) {
				t.Errorf("answer\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.answer, "\n"))
			}
			var nsTypes []string
			for _, rr := range m.Ns {
				nsTypes = append(nsTypes, dns.TypeToString[rr.Header().Rrtype])
			}
			if !slices.Equal(nsTypes, tt.ns) {
				t.Errorf("authority %v, want %v", nsTypes, tt.ns)
			}
			if got := strs(m.Extra); !slices.Equal(got, tt.extra) {
				t.Errorf("additional\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.extra, "\n"))
			}
		})
	}
}

func strs(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

func TestExternalAnswers(t *testing.T) {
	h := &Handler{Zones: []string{"example.org.", "2.0.192.in-addr.arpa."}, Apex: "dns", TTL: 5, Zone: testZone(t), Next: next{}}
	soa := []string{"SOA"}
	run(t, h, []exchange{
		{name: "A of external IPs", qname: "lb.ns.example.org.", qtype: dns.TypeA,
			answer: []string{"lb.ns.example.org. 5 IN A 192.0.2.1", "lb.ns.example.org. 5 IN A 192.0.2.2"}},
		{name: "A keeps the case asked", qname: "LB.ns.Example.org.", qtype: dns.TypeA,
			answer: []string{"LB.ns.Example.org. 5 IN A 192.0.2.1", "LB.ns.Example.org. 5 IN A 192.0.2.2"}},
		{name: "AAAA of an IPv4-only Service is NODATA", qname: "lb.ns.example.org.", qtype: dns.TypeAAAA, ns: soa},
		{name: "AAAA of an IPv6 load balancer", qname: "v6.ns.example.org.", qtype: dns.TypeAAAA,
			answer: []string{"v6.ns.example.org. 5 IN AAAA 2001:db8::1"}},
		{name: "load balancer hostname is a CNAME", qname: "host.ns.example.org.", qtype: dns.TypeA,
			answer: []string{"host.ns.example.org. 30 IN CNAME lb.example.net."}},
		{name: "SRV at the Service name", qname: "lb.ns.example.org.", qtype: dns.TypeSRV,
			answer: []string{"lb.ns.example.org. 30 IN SRV 0 50 80 lb.ns.example.org."},
			extra:  []string{"lb.ns.example.org. 5 IN A 192.0.2.1", "lb.ns.example.org. 5 IN A 192.0.2.2"}},
		{name: "SRV of a named port", qname: "_http._tcp.lb.ns.example.org.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.lb.ns.example.org. 30 IN SRV 0 50 80 lb.ns.example.org."},
			extra:  []string{"lb.ns.example.org. 5 IN A 192.0.2.1", "lb.ns.example.org. 5 IN A 192.0.2.2"}},
		{name: "SRV of an unknown port", qname: "_dns._udp.lb.ns.example.org.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: soa},
		{name: "TXT of a Service is NODATA", qname: "lb.ns.example.org.", qtype: dns.TypeTXT, ns: soa},
		{name: "Service without external addresses", qname: "plain.ns.example.org.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: soa},
		{name: "headless Service without the headless option", qname: "db.ns.example.org.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: soa},
		{name: "unknown Service", qname: "nope.ns.example.org.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: soa},
		{name: "unknown namespace", qname: "lb.nope.example.org.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: soa},
		{name: "namespace name is NODATA", qname: "empty.example.org.", qtype: dns.TypeA, ns: soa},
		{name: "too many labels", qname: "a.b.c.lb.ns.example.org.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: soa},
		{name: "apex SOA", qname: "example.org.", qtype: dns.TypeSOA,
			answer: []string{"example.org. 5 IN SOA ns1.dns.example.org. hostmaster.dns.example.org. " + serial(h) + " 7200 1800 86400 5"}},
		{name: "apex NS with the name server's external address", qname: "example.org.", qtype: dns.TypeNS,
			answer: []string{"example.org. 5 IN NS ns1.dns.example.org."},
			extra:  []string{"ns1.dns.example.org. 5 IN A 198.51.100.53"}},
		{name: "apex A is NODATA", qname: "example.org.", qtype: dns.TypeA, ns: soa},
		{name: "name server address", qname: "ns1.dns.example.org.", qtype: dns.TypeA,
			answer: []string{"ns1.dns.example.org. 5 IN A 198.51.100.53"}},
		{name: "name server has no AAAA", qname: "ns1.dns.example.org.", qtype: dns.TypeAAAA, ns: soa},
		{name: "apex subdomain is an empty non-terminal", qname: "dns.example.org.", qtype: dns.TypeA, ns: soa},
		{name: "other names under the apex subdomain", qname: "ns2.dns.example.org.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: soa},
		{name: "PTR of an external IP", qname: "1.2.0.192.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.2.0.192.in-addr.arpa. 5 IN PTR lb.ns.example.org."}},
		{name: "PTR of an unknown address", qname: "9.2.0.192.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: soa},
		{name: "PTR of a Service name is NODATA", qname: "lb.ns.example.org.", qtype: dns.TypePTR, ns: soa},
		{name: "names outside the zones are handed on", qname: "lb.ns.svc.cluster.local.", qtype: dns.TypeA, passed: true},
	})
}

func serial(h *Handler) string { return strconv.FormatUint(uint64(h.Zone.Serial()), 10) }

func TestHeadlessAnswersEndpoints(t *testing.T) {
	h := &Handler{Zones: []string{"example.org."}, Apex: "dns", TTL: 5, Headless: true, Zone: testZone(t), Next: next{}}
	run(t, h, []exchange{
		{name: "A of a headless Service", qname: "db.ns.example.org.", qtype: dns.TypeA,
			answer: []string{"db.ns.example.org. 5 IN A 10.0.0.1"}},
		{name: "A of an endpoint", qname: "db-0.db.ns.example.org.", qtype: dns.TypeA,
			answer: []string{"db-0.db.ns.example.org. 5 IN A 10.0.0.1"}},
		{name: "unknown endpoint", qname: "db-9.db.ns.example.org.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},
		{name: "SRV targets the endpoints", qname: "_http._tcp.db.ns.example.org.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.db.ns.example.org. 30 IN SRV 0 100 80 db-0.db.ns.example.org."},
			extra:  []string{"db-0.db.ns.example.org. 5 IN A 10.0.0.1"}},
		{name: "Services with external IPs still answer those", qname: "lb.ns.example.org.", qtype: dns.TypeA,
			answer: []string{"lb.ns.example.org. 5 IN A 192.0.2.1", "lb.ns.example.org. 5 IN A 192.0.2.2"}},
	})
}

func TestFallthrough(t *testing.T) {
	h := &Handler{Zones: []string{"example.org."}, Apex: "dns", TTL: 5, Fallthrough: []string{"."}, Zone: testZone(t), Next: next{}}
	run(t, h, []exchange{
		{name: "NXDOMAIN falls through", qname: "nope.ns.example.org.", qtype: dns.TypeA, passed: true},
		{name: "NODATA does not", qname: "lb.ns.example.org.", qtype: dns.TypeAAAA, ns: []string{"SOA"}},
		{name: "answers do not", qname: "lb.ns.example.org.", qtype: dns.TypeA,
			answer: []string{"lb.ns.example.org. 5 IN A 192.0.2.1", "lb.ns.example.org. 5 IN A 192.0.2.2"}},
	})
}

func TestNotSyncedIsServfail(t *testing.T) {
	z := zones.New(zones.Options{Zones: []string{"cluster.local."}, TTL: 5})
	h := &Handler{Zones: []string{"example.org."}, Apex: "dns", TTL: 5, Zone: z}
	r := new(dns.Msg)
	r.SetQuestion("lb.ns.example.org.", dns.TypeA)
	if m := h.ServeDNS(context.Background(), plugin.NewState(r, ".", nil, "udp")); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s before sync, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
}
