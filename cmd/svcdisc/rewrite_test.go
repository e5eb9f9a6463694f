package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// namingUpstream answers every A query with 192.0.2.1 and remembers the
// names it was asked.
type namingUpstream struct {
	addr  string
	mu    sync.Mutex
	asked []string
}

func startNamingUpstream(t *testing.T) *namingUpstream {
	t.Helper()
	u := &namingUpstream{}
	u.addr = startDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		u.mu.Lock()
		u.asked = append(u.asked, r.Question[0].Name)
		u.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})
	return u
}

func TestRewriteEndToEnd(t *testing.T) {
	up := startNamingUpstream(t)
	r, _ := serveCorefile(t, fmt.Sprintf(`. {
    rewrite name substring .corp.internal .svc.cluster.local answer auto
    rewrite stop {
        name suffix .ext.example .example.org
        answer auto
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . %s
    cache 30
}
`, up.addr))
	addr := r.in.dnsAddr()

	// A cluster service under another domain, asked over UDP several
	// times (the fast path must never answer it under the internal name),
	// with the internal name asked in between.
	for i := range 3 {
		for _, q := range []struct{ name, want string }{
			{"web.shop.corp.internal.", "web.shop.corp.internal."},
			{"web.shop.svc.cluster.local.", "web.shop.svc.cluster.local."},
			{"Web.Shop.Corp.Internal.", "Web.Shop.Corp.Internal."},
		} {
			m := query(t, "udp", addr, q.name, dns.TypeA)
			if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
				t.Fatalf("round %d, %s: rcode %s, AA %v", i, q.name, dns.RcodeToString[m.Rcode], m.Authoritative)
			}
			if m.Question[0].Name != q.name {
				t.Errorf("round %d: question %q, want %q", i, m.Question[0].Name, q.name)
			}
			if len(m.Answer) != 1 || m.Answer[0].Header().Name != q.want || firstA(m) != "10.96.10.10" {
				t.Errorf("round %d, %s: answer %v, want %s A 10.96.10.10", i, q.name, m.Answer, q.want)
			}
			if strings.Contains(strings.ToLower(q.name), ".corp.") && strings.Contains(m.String(), ".svc.cluster.local") {
				t.Errorf("round %d, %s: the internal name leaked:\n%v", i, q.name, m)
			}
		}
	}

	// A name that does not exist: NXDOMAIN, the asked question.
	m := query(t, "udp", addr, "nope.shop.corp.internal.", dns.TypeA)
	if m.Rcode != dns.RcodeNameError || m.Question[0].Name != "nope.shop.corp.internal." {
		t.Errorf("missing service: rcode %s, question %v", dns.RcodeToString[m.Rcode], m.Question)
	}

	// A forwarded name: the upstream is asked the rewritten name, the
	// client gets its own back (over TCP too).
	for _, proto := range []string{"udp", "tcp"} {
		m := query(t, proto, addr, "www.ext.example.", dns.TypeA)
		if len(m.Answer) != 1 || m.Answer[0].Header().Name != "www.ext.example." || firstA(m) != "192.0.2.1" {
			t.Errorf("%s forwarded: answer %v, want www.ext.example. A 192.0.2.1", proto, m.Answer)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.asked) != 1 || up.asked[0] != "www.example.org." {
		t.Errorf("upstream was asked %q, want www.example.org. once (the cache answers the repeat)", up.asked)
	}
}
