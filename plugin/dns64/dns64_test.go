package dns64

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// zone answers v4only.example. with an A record, dual.example. with A and
// AAAA, and NXDOMAIN otherwise, with a SOA of minimum 60 in negatives.
type zone struct{}

func (zone) Name() string { return "test" }
func (zone) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	m := st.Reply()
	rr := func(s string) dns.RR { r, _ := dns.NewRR(s); return r }
	soa := rr("example. 300 IN SOA ns.example. h.example. 1 2 3 4 60")
	switch {
	case st.Name == "v4only.example." && st.Type == dns.TypeA:
		m.Answer = []dns.RR{rr("v4only.example. 300 IN A 192.0.2.33")}
	case st.Name == "dual.example." && st.Type == dns.TypeA:
		m.Answer = []dns.RR{rr("dual.example. 300 IN A 192.0.2.34")}
	case st.Name == "dual.example." && st.Type == dns.TypeAAAA:
		m.Answer = []dns.RR{rr("dual.example. 300 IN AAAA 2001:db8::34")}
	case st.Name == "v4only.example." || st.Name == "dual.example.":
		m.Ns = []dns.RR{soa}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	}
	return m
}

var (
	v6client = &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5353}
	v4client = &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 5353}
)

func TestDNS64SynthesizesAAAAFromA(t *testing.T) {
	wk := config.DNS64{Prefix: netip.MustParsePrefix("64:ff9b::/96")}
	tests := []struct {
		name   string
		conf   config.DNS64
		qname  string
		client net.Addr
		want   []string
	}{
		{"an IPv4-only name for an IPv6 client", wk, "v4only.example.", v6client, []string{"v4only.example.\t60\tIN\tAAAA\t64:ff9b::c000:221"}},
		{"an IPv4 client is left alone", wk, "v4only.example.", v4client, nil},
		{"allow_ipv4 translates for IPv4 clients", config.DNS64{Prefix: wk.Prefix, AllowIPv4: true}, "v4only.example.", v4client,
			[]string{"v4only.example.\t60\tIN\tAAAA\t64:ff9b::c000:221"}},
		{"a name with AAAA keeps it", wk, "dual.example.", v6client, []string{"dual.example.\t300\tIN\tAAAA\t2001:db8::34"}},
		{"translate_all replaces it", config.DNS64{Prefix: wk.Prefix, TranslateAll: true}, "dual.example.", v6client,
			[]string{"dual.example.\t300\tIN\tAAAA\t64:ff9b::c000:222"}},
		{"a /64 prefix skips the u octet (RFC 6052)", config.DNS64{Prefix: netip.MustParsePrefix("2001:db8:122:344::/64")},
			"v4only.example.", v6client, []string{"v4only.example.\t60\tIN\tAAAA\t2001:db8:122:344:c0:2:2100:0"}},
		{"a /32 prefix", config.DNS64{Prefix: netip.MustParsePrefix("2001:db8::/32")},
			"v4only.example.", v6client, []string{"v4only.example.\t60\tIN\tAAAA\t2001:db8:c000:221::"}},
		{"NXDOMAIN stays", wk, "nx.example.", v6client, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{DNS64: tt.conf, Next: zone{}}
			r := new(dns.Msg)
			r.SetQuestion(tt.qname, dns.TypeAAAA)
			st := plugin.NewState(r, ".", tt.client, "udp")
			m := h.ServeDNS(context.Background(), st)
			var got []string
			for _, rr := range m.Answer {
				got = append(got, rr.String())
			}
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Errorf("answer %q, want %q", got, tt.want)
			}
			if !st.NoFast {
				t.Error("an AAAA answer that depends on the client's family must stay off the fast path")
			}
			if m.Question[0].Qtype != dns.TypeAAAA {
				t.Errorf("question %v, want the AAAA asked", m.Question[0])
			}
		})
	}
}
