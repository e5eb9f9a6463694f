package kubernetes

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/internal/zonetest"
	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/zones"
)

const soaExample = "example.com.\t60\tIN\tSOA\tns.example.com. hostmaster.example.com. 1 7200 1800 86400 60"

func extnameZone(t *testing.T) *zones.Zone {
	t.Helper()
	return zonetest.Zone(t, "testdata/extname.yaml", zones.Options{Zones: []string{"cluster.local."}, TTL: 30})
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// upstreamOf is a fake upstream: db.example.com. has an A, an AAAA and a
// TXT, with an NS in authority and glue; other types are NODATA.
func upstreamOf(t *testing.T) func(name string, qtype uint16) *dns.Msg {
	return func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Response = true
		records := map[uint16]string{
			dns.TypeA:    "db.example.com. 300 IN A 192.0.2.10",
			dns.TypeAAAA: "db.example.com. 300 IN AAAA 2001:db8::10",
			dns.TypeTXT:  `db.example.com. 300 IN TXT "primary"`,
		}
		if s, ok := records[qtype]; ok && name == "db.example.com." {
			m.Answer = []dns.RR{rr(t, s)}
			m.Ns = []dns.RR{rr(t, "example.com. 300 IN NS ns.example.com.")}
			m.Extra = []dns.RR{rr(t, "ns.example.com. 300 IN A 192.0.2.53")}
			return m
		}
		m.Ns = []dns.RR{rr(t, soaExample)}
		return m
	}
}

// rcodeOf is a fake upstream that answers every name with rcode, and the
// zone's SOA when that is NXDOMAIN.
func rcodeOf(t *testing.T, rcode int) func(name string, qtype uint16) *dns.Msg {
	return func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Response, m.Rcode = true, rcode
		if rcode == dns.RcodeNameError {
			m.Ns = []dns.RR{rr(t, soaExample)}
		}
		return m
	}
}

func strs(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, r := range rrs {
		out = append(out, r.String())
	}
	return out
}

func TestExternalNameTargetIsResolvedThroughTheBlock(t *testing.T) {
	const (
		cname      = "outside.shop.svc.cluster.local.\t30\tIN\tCNAME\tdb.example.com."
		innerCNAME = "inner.shop.svc.cluster.local.\t30\tIN\tCNAME\toutside.shop.svc.cluster.local."
		a          = "db.example.com.\t300\tIN\tA\t192.0.2.10"
	)
	truncated := func(name string, qtype uint16) *dns.Msg {
		m := upstreamOf(t)(name, qtype)
		m.Truncated = true
		return m
	}
	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		upstream func(name string, qtype uint16) *dns.Msg // nil: no Lookup
		rcode    int
		aa, tc   bool
		answer   []string
		ns       []string
		lookups  []string // "name type" asked of the block
		noFast   bool
	}{
		{name: "A: the CNAME then the target's A, without its authority or additional records",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeA, upstream: upstreamOf(t),
			rcode: dns.RcodeSuccess, aa: true, answer: []string{cname, a},
			lookups: []string{"db.example.com. A"}, noFast: true},
		{name: "AAAA: the CNAME then the target's AAAA",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeAAAA, upstream: upstreamOf(t),
			rcode: dns.RcodeSuccess, aa: true, answer: []string{cname, "db.example.com.\t300\tIN\tAAAA\t2001:db8::10"},
			lookups: []string{"db.example.com. AAAA"}, noFast: true},
		{name: "any other type asked is asked of the target",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeTXT, upstream: upstreamOf(t),
			rcode: dns.RcodeSuccess, aa: true, answer: []string{cname, "db.example.com.\t300\tIN\tTXT\t\"primary\""},
			lookups: []string{"db.example.com. TXT"}, noFast: true},
		{name: "the target without the type asked is NODATA with the CNAME and the target zone's SOA",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeMX, upstream: upstreamOf(t),
			rcode: dns.RcodeSuccess, aa: true, answer: []string{cname}, ns: []string{soaExample},
			lookups: []string{"db.example.com. MX"}, noFast: true},
		{name: "a chain through an in-zone ExternalName ends with the target's records",
			qname: "INNER.shop.svc.cluster.local.", qtype: dns.TypeA, upstream: upstreamOf(t),
			rcode: dns.RcodeSuccess, aa: true,
			answer:  []string{strings.Replace(innerCNAME, "inner", "INNER", 1), cname, a},
			lookups: []string{"db.example.com. A"}, noFast: true},
		{name: "a CNAME query is answered with the CNAME alone, nothing looked up",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeCNAME, upstream: upstreamOf(t),
			rcode: dns.RcodeSuccess, aa: true, answer: []string{cname}},
		{name: "the target's NXDOMAIN is NXDOMAIN with the CNAME and the upstream's SOA (RFC 6604)",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeA, upstream: rcodeOf(t, dns.RcodeNameError),
			rcode: dns.RcodeNameError, aa: true, answer: []string{cname}, ns: []string{soaExample},
			lookups: []string{"db.example.com. A"}, noFast: true},
		{name: "an upstream SERVFAIL is SERVFAIL",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeA, upstream: rcodeOf(t, dns.RcodeServerFailure),
			rcode: dns.RcodeServerFailure, lookups: []string{"db.example.com. A"}, noFast: true},
		{name: "an upstream FORMERR is SERVFAIL",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeA, upstream: rcodeOf(t, dns.RcodeFormatError),
			rcode: dns.RcodeServerFailure, lookups: []string{"db.example.com. A"}, noFast: true},
		{name: "a target nothing in the block answers (REFUSED) leaves the CNAME alone",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeA, upstream: rcodeOf(t, dns.RcodeRefused),
			rcode: dns.RcodeSuccess, aa: true, answer: []string{cname}, lookups: []string{"db.example.com. A"}, noFast: true},
		{name: "a truncated upstream answer truncates the reply",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeA, upstream: truncated,
			rcode: dns.RcodeSuccess, aa: true, tc: true, answer: []string{cname, a},
			lookups: []string{"db.example.com. A"}, noFast: true},
		{name: "without a lookup the CNAME is answered alone, as the fast path may keep",
			qname: "outside.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeSuccess, aa: true, answer: []string{cname}},
		{name: "an ExternalName to itself is a loop in our zones: SERVFAIL, nothing looked up",
			qname: "self.shop.svc.cluster.local.", qtype: dns.TypeA, upstream: upstreamOf(t),
			rcode: dns.RcodeServerFailure, aa: true,
			answer: slices.Repeat([]string{"self.shop.svc.cluster.local.\t30\tIN\tCNAME\tself.shop.svc.cluster.local."}, maxCNAMEChain)},
		{name: "a cluster name is not looked up",
			qname: "web.shop.svc.cluster.local.", qtype: dns.TypeA, upstream: upstreamOf(t),
			rcode: dns.RcodeSuccess, aa: true, answer: []string{"web.shop.svc.cluster.local.\t30\tIN\tA\t10.96.0.10"}},
	}
	z := extnameZone(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := New(z, nil, nil)
			var lookups []string
			if tt.upstream != nil {
				k.Lookup = func(_ context.Context, _ *plugin.State, name string, qtype uint16) *dns.Msg {
					lookups = append(lookups, name+" "+dns.TypeToString[qtype])
					return tt.upstream(name, qtype)
				}
			}
			r := new(dns.Msg)
			r.SetQuestion(tt.qname, tt.qtype)
			st := plugin.NewState(r, ".", nil, "udp")
			m := k.ServeDNS(context.Background(), st)
			if m.Rcode != tt.rcode || m.Authoritative != tt.aa || m.Truncated != tt.tc {
				t.Errorf("rcode %s AA %v TC %v, want %s %v %v\n%v", dns.RcodeToString[m.Rcode], m.Authoritative, m.Truncated,
					dns.RcodeToString[tt.rcode], tt.aa, tt.tc, m)
			}
			if got := strs(m.Answer); !slices.Equal(got, tt.answer) {
				t.Errorf("answer:\n%q\nwant\n%q", got, tt.answer)
			}
			if got := strs(m.Ns); !slices.Equal(got, tt.ns) {
				t.Errorf("authority:\n%q\nwant\n%q", got, tt.ns)
			}
			if len(m.Extra) != 0 {
				t.Errorf("additional: %v, want none", m.Extra)
			}
			if !slices.Equal(lookups, tt.lookups) {
				t.Errorf("looked up %q, want %q", lookups, tt.lookups)
			}
			if st.NoFast != tt.noFast {
				t.Errorf("NoFast = %v, want %v: a reply with the upstream's records must not be kept in wire form", st.NoFast, tt.noFast)
			}
			if st.By != Name {
				t.Errorf("By = %q, want %q", st.By, Name)
			}
			if (tt.rcode == dns.RcodeServerFailure) != (st.Err != nil) {
				t.Errorf("Err = %v for rcode %s", st.Err, dns.RcodeToString[tt.rcode])
			}
		})
	}
}

// A lookup that comes back into the cluster zone (a rewrite of the target
// into it) stops after plugin.MaxLookups rounds: no endless recursion.
func TestExternalNameLookupLoopIsBounded(t *testing.T) {
	k := New(extnameZone(t), nil, nil)
	rounds := 0
	k.Lookup = func(ctx context.Context, st *plugin.State, name string, qtype uint16) *dns.Msg {
		rounds++
		r := new(dns.Msg)
		r.SetQuestion("outside.shop.svc.cluster.local.", qtype)
		return k.ServeDNS(ctx, plugin.NewState(r, ".", nil, "udp"))
	}
	r := new(dns.Msg)
	r.SetQuestion("outside.shop.svc.cluster.local.", dns.TypeA)
	m := k.ServeDNS(context.Background(), plugin.NewState(r, ".", nil, "udp"))
	if rounds != plugin.MaxLookups || len(m.Answer) != plugin.MaxLookups+1 || m.Rcode != dns.RcodeSuccess {
		t.Errorf("%d lookups, %d records, rcode %s; want %d, %d, NOERROR", rounds, len(m.Answer),
			dns.RcodeToString[m.Rcode], plugin.MaxLookups, plugin.MaxLookups+1)
	}
}

func TestSearchExpansionsAreTheClientsNXDOMAINsOfTheForwardZones(t *testing.T) {
	client := &net.UDPAddr{IP: net.IPv4(10, 1, 0, 5), Port: 40000}
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		remote  net.Addr
		fall    []string
		rcode   int
		counted bool
	}{
		{"a name below a search domain that does not exist", "www.example.com.shop.svc.cluster.local.", dns.TypeA, client, nil, dns.RcodeNameError, true},
		{"the same asked for AAAA", "www.example.com.shop.svc.cluster.local.", dns.TypeAAAA, client, nil, dns.RcodeNameError, true},
		{"a name that exists", "web.shop.svc.cluster.local.", dns.TypeA, client, nil, dns.RcodeSuccess, false},
		{"a name without the type asked (NODATA)", "web.shop.svc.cluster.local.", dns.TypeMX, client, nil, dns.RcodeSuccess, false},
		{"a reverse name that does not exist", "9.9.9.10.in-addr.arpa.", dns.TypePTR, client, nil, dns.RcodeNameError, false},
		{"a name the handler hands on (fallthrough)", "nope.shop.svc.cluster.local.", dns.TypeA, client, []string{"."}, dns.RcodeNameError, false},
		{"the fast path's trial run, which has no client", "nope.shop.svc.cluster.local.", dns.TypeA, nil, nil, dns.RcodeNameError, false},
		{"an in-zone CNAME whose target does not exist", "dangling.shop.svc.cluster.local.", dns.TypeA, client, nil, dns.RcodeNameError, false},
	}
	z := zonetest.Zone(t, "testdata/extname.yaml", zones.Options{Zones: []string{"cluster.local.", "in-addr.arpa."}, TTL: 30})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			k := New(z, tt.fall, rcodeHandler(dns.RcodeNameError))
			k.Expansion = func() { n++ }
			r := new(dns.Msg)
			r.SetQuestion(tt.qname, tt.qtype)
			if m := k.ServeDNS(context.Background(), plugin.NewState(r, ".", tt.remote, "udp")); m.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
			}
			if counted := n == 1; counted != tt.counted || n > 1 {
				t.Errorf("counted %d expansions, want %v", n, tt.counted)
			}
		})
	}
}

// rcodeHandler answers every query it is handed with its rcode.
type rcodeHandler int

func (rcodeHandler) Name() string { return "next" }
func (r rcodeHandler) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	return st.Error("next", int(r))
}
