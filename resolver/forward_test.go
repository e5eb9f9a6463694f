package resolver

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/forward"
	pcache "github.com/svcdisc/svcdisc/plugin/cache"
	pforward "github.com/svcdisc/svcdisc/plugin/forward"
)

// fakeUpstream answers every A query with 192.0.2.1 (or fails with err) and
// counts what reached it.
type fakeUpstream struct {
	calls atomic.Int32
	err   error
}

func (u *fakeUpstream) Exchange(_ context.Context, req *dns.Msg) (*dns.Msg, error) {
	u.calls.Add(1)
	if u.err != nil {
		return nil, u.err
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Id = 4242 // an upstream's own ID: ours must win
	m.RecursionAvailable = true
	q := req.Question[0]
	if q.Name == "nx.example.com." {
		m.Rcode = dns.RcodeNameError
		soa, _ := dns.NewRR("example.com. 300 IN SOA ns.example.com. h.example.com. 1 2 3 4 60")
		m.Ns = []dns.RR{soa}
		return m, nil
	}
	if q.Qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1)}}
	}
	return m, nil
}

func forwardingHandler(t *testing.T, up pforward.Upstream, cached bool, now *time.Time) *Handler {
	t.Helper()
	h := newTestHandler(t, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, loadObjects(t, "testdata/cluster.yaml"))
	withForward(h, up, "internal.example.")
	if cached {
		withCache(h, cache.New(cache.Options{ServeStale: time.Hour, Now: func() time.Time { return *now }}))
	}
	return h
}

func ask(h *Handler, name string, qtype uint16) *dns.Msg {
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	r.Id = 7
	m, _ := h.answer(r)
	return m
}

func TestNamesOutsideTheClusterAreForwarded(t *testing.T) {
	up := &fakeUpstream{}
	h := forwardingHandler(t, up, false, nil)
	m := ask(h, "www.example.com.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Id != 7 || m.Authoritative || !m.RecursionAvailable {
		t.Fatalf("forwarded answer: %v", m)
	}
	if m := ask(h, "nx.example.com.", dns.TypeA); m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
		t.Fatalf("forwarded NXDOMAIN: %v", m)
	}
	if m := ask(h, "8.8.8.8.in-addr.arpa.", dns.TypePTR); m.Rcode != dns.RcodeSuccess || up.calls.Load() != 3 {
		t.Fatalf("a reverse name that falls through was not forwarded: %v (calls %d)", m, up.calls.Load())
	}
	if m := ask(h, "db.internal.example.", dns.TypeA); m.Rcode != dns.RcodeRefused {
		t.Fatalf("an excepted zone: rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
	before := up.calls.Load()
	for _, name := range []string{"web.shop.svc.cluster.local.", "nope.shop.svc.cluster.local.", "1.1.96.10.in-addr.arpa."} {
		ask(h, name, dns.TypeA)
	}
	if up.calls.Load() != before {
		t.Fatal("cluster names reached the upstream")
	}
}

func TestUpstreamFailures(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		rcode int
	}{
		{"an upstream error is SERVFAIL", errors.New("timeout"), dns.RcodeServerFailure},
		{"all upstreams down is SERVFAIL", forward.ErrNoHealthy, dns.RcodeServerFailure},
		{"max_concurrent sheds load with REFUSED", forward.ErrLimit, dns.RcodeRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := forwardingHandler(t, &fakeUpstream{err: tc.err}, false, nil)
			if m := ask(h, "www.example.com.", dns.TypeA); m.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
}

func TestCacheAnswersRepeatsAndServesStale(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	up := &fakeUpstream{}
	h := forwardingHandler(t, up, true, &now)
	ask(h, "www.example.com.", dns.TypeA)
	now = now.Add(100 * time.Second)
	m := ask(h, "www.example.com.", dns.TypeA)
	if up.calls.Load() != 1 {
		t.Fatalf("a repeat reached the upstream (%d calls)", up.calls.Load())
	}
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 200 || m.Id != 7 {
		t.Fatalf("cached answer %v, want TTL 200 and our ID", m)
	}
	// Expired, and the upstream now fails: the stale answer is served.
	now = now.Add(time.Hour - time.Minute)
	up.err = errors.New("unreachable")
	if m := ask(h, "www.example.com.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("serve_stale: %v", m)
	}
	// Cluster answers are never cached: they always come from the zone.
	if s, d := h.blocks[0].block.Chain.(*pcache.Handler).Cache.Len(); s+d != 1 {
		t.Fatalf("cache holds %d entries, want only the forwarded one", s+d)
	}
}

func TestLoadBalanceShufflesAddresses(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, bigHeadless(8))
	withLoadBalance(h, true)
	firsts := make(map[string]bool)
	for range 50 {
		m := ask(h, "hl.big.svc.cluster.local.", dns.TypeA)
		if len(m.Answer) != 8 {
			t.Fatalf("%d answers, want 8", len(m.Answer))
		}
		firsts[m.Answer[0].(*dns.A).A.String()] = true
	}
	if len(firsts) < 2 {
		t.Fatal("50 answers all started with the same address")
	}
	// The zone's own records keep their order.
	withLoadBalance(h, false)
	if a, b := ask(h, "hl.big.svc.cluster.local.", dns.TypeA), ask(h, "hl.big.svc.cluster.local.", dns.TypeA); a.Answer[0].String() != b.Answer[0].String() {
		t.Fatal("without loadbalance the order changed, or shuffling changed the zone's records")
	}
}
