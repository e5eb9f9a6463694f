package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/resolver"
)

// Every reply is counted with its true rcode: BADVERS (16, which
// miekg/dns's table calls BADSIG, TSIG's meaning of 16) for a query of an
// EDNS version we do not speak, and the FORMERR and NOTIMP of malformed
// queries the server answers without a chain, over UDP and TCP.
func TestRepliesAreCountedWithTheirTrueRcode(t *testing.T) {
	m := New(Options{})
	h := resolver.NewHandler(nil, nil)
	h.SetObserver(m.Observer("dns://:53"))
	srv, err := resolver.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	srv.Start(errc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	queries := []struct {
		f    func(*dns.Msg)
		want string
	}{
		{func(r *dns.Msg) { r.SetEdns0(1232, false); r.IsEdns0().SetVersion(1) }, "BADVERS"},
		{func(r *dns.Msg) { r.Question = nil }, "FORMERR"},
		{func(r *dns.Msg) { r.Opcode = dns.OpcodeUpdate }, "NOTIMP"},
		{func(r *dns.Msg) {}, "REFUSED"}, // no block serves it
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, q := range queries {
			r := new(dns.Msg)
			r.SetQuestion("example.org.", dns.TypeA)
			q.f(r)
			c := &dns.Client{Net: network, Timeout: 2 * time.Second}
			resp, _, err := c.Exchange(r, srv.Addr())
			if err != nil {
				t.Fatalf("%s, %s: %v", network, q.want, err)
			}
			if got := dns.RcodeToString[resp.Rcode]; got != q.want && !(q.want == "BADVERS" && resp.Rcode == dns.RcodeBadVers) {
				t.Fatalf("%s: rcode %s, want %s", network, got, q.want)
			}
		}
	}
	counts := make(map[string]float64)
	// The Observer runs after the write, each query's on its own: wait
	// for every count, not for the last query's.
	all := func() bool {
		for _, q := range queries {
			if counts[q.want] != 2 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		clear(counts)
		families, _ := m.Registry.Gather()
		for _, f := range families {
			if f.GetName() != "svcdisc_dns_responses_total" {
				continue
			}
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "rcode" {
						counts[l.GetValue()] += s.GetCounter().GetValue()
					}
				}
			}
		}
		if all() || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, q := range queries {
		if counts[q.want] != 2 {
			t.Errorf("%s replies counted %v times, want 2 (counts %v)", q.want, counts[q.want], counts)
		}
	}
	if counts["BADSIG"] != 0 {
		t.Errorf("BADVERS counted as BADSIG: %v", counts)
	}
}
