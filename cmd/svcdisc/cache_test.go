package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// namedUpstream is an in-process DNS server that counts queries per name:
// names starting with "broken." get SERVFAIL, "nope." NXDOMAIN with an
// SOA, and every other A query 192.0.2.1 with TTL 300.
type namedUpstream struct {
	addr  string
	mu    sync.Mutex
	calls map[string]int
}

func startNamedUpstream(t *testing.T) *namedUpstream {
	t.Helper()
	u := &namedUpstream{calls: map[string]int{}}
	u.addr = startDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		q := r.Question[0]
		u.mu.Lock()
		u.calls[strings.ToLower(q.Name)]++
		u.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		switch {
		case strings.HasPrefix(q.Name, "broken."):
			m.Rcode = dns.RcodeServerFailure
		case strings.HasPrefix(q.Name, "nope."):
			m.Rcode = dns.RcodeNameError
			soa, _ := dns.NewRR("example.org. 3600 IN SOA ns.example.org. h.example.org. 1 7200 3600 1209600 3600")
			m.Ns = append(m.Ns, soa)
		case q.Qtype == dns.TypeA:
			rr, _ := dns.NewRR(q.Name + " 300 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	return u
}

func (u *namedUpstream) asked(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[name]
}

func TestCacheOptionsEndToEnd(t *testing.T) {
	up := startNamedUpstream(t)
	r, _ := serveCorefile(t, fmt.Sprintf(`. {
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . %s
    cache 30 {
        disable success cluster.local example.net
        disable denial cluster.local
        servfail 10s
    }
}
example.com {
    cache 30
}
`, up.addr))
	addr := r.in.dnsAddr()

	t.Run("the first answer is capped at the cache TTL like the cached ones", func(t *testing.T) {
		for i := range 3 {
			m := query(t, "udp", addr, "www.example.org.", dns.TypeA)
			if firstA(m) != "192.0.2.1" {
				t.Fatalf("answer %v", m)
			}
			if ttl := m.Answer[0].Header().Ttl; ttl > 30 || ttl < 29 {
				t.Errorf("answer %d: TTL %d, want 30 (the upstream said 300)", i, ttl)
			}
		}
		if n := up.asked("www.example.org."); n != 1 {
			t.Errorf("upstream asked %d times, want 1", n)
		}
	})
	t.Run("the denial TTL is capped too", func(t *testing.T) {
		for range 2 {
			m := query(t, "udp", addr, "nope.example.org.", dns.TypeA)
			if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 || m.Ns[0].Header().Ttl > 30 {
				t.Fatalf("reply %v, want NXDOMAIN with the SOA's TTL capped at 30", m)
			}
		}
		if n := up.asked("nope.example.org."); n != 1 {
			t.Errorf("upstream asked %d times, want 1", n)
		}
	})
	t.Run("disable success sends a zone's names upstream every time", func(t *testing.T) {
		for range 3 {
			if m := query(t, "udp", addr, "www.example.net.", dns.TypeA); firstA(m) != "192.0.2.1" || m.Answer[0].Header().Ttl != 30 {
				t.Fatalf("answer %v, want 192.0.2.1 with TTL 30", m)
			}
		}
		if n := up.asked("www.example.net."); n != 3 {
			t.Errorf("upstream asked %d times, want 3", n)
		}
	})
	t.Run("an upstream SERVFAIL is cached for the servfail duration", func(t *testing.T) {
		for range 3 {
			if m := query(t, "udp", addr, "broken.example.org.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
				t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
			}
		}
		if n := up.asked("broken.example.org."); n != 1 {
			t.Errorf("upstream asked %d times, want 1", n)
		}
	})
	t.Run("cluster names are answered from the zone", func(t *testing.T) {
		if got := firstA(query(t, "udp", addr, "web.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.10" {
			t.Errorf("cluster A = %q", got)
		}
		if m := query(t, "udp", addr, "nope.shop.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeNameError {
			t.Errorf("missing cluster name: rcode %s", dns.RcodeToString[m.Rcode])
		}
		if n := up.asked("web.shop.svc.cluster.local.") + up.asked("nope.shop.svc.cluster.local."); n != 0 {
			t.Errorf("a cluster name reached the upstream %d times", n)
		}
	})
	t.Run("a block with cache and no forward caches nothing and answers REFUSED", func(t *testing.T) {
		if m := query(t, "udp", addr, "www.example.com.", dns.TypeA); m.Rcode != dns.RcodeRefused {
			t.Errorf("rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
		}
	})
}
