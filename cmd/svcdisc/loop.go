package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/resolver"
)

// loopGuard is the loop directive: at start the server asks itself a
// random name that only forwarding can answer; if that query comes back
// to us through the upstreams, queries would circle until they time out,
// so the server stops with an error instead, as CoreDNS's loop plugin does.
type loopGuard struct {
	next dns.Handler
	name string // lower case
	seen atomic.Int32
	errc chan<- error
}

func newLoopGuard(zone string) *loopGuard {
	name := fmt.Sprintf("%d.%d.%s", rand.Uint64(), rand.Uint64(), strings.TrimPrefix(zone, "."))
	return &loopGuard{name: dns.Fqdn(strings.ToLower(name))}
}

// ServeDNS implements dns.Handler.
func (g *loopGuard) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeHINFO && strings.EqualFold(r.Question[0].Name, g.name) {
		// Our own probe arrives once; more means it came back.
		if g.seen.Add(1) == 3 && g.errc != nil {
			g.errc <- fmt.Errorf("loop detected: the probe %s HINFO came back through the forward upstreams; "+
				"an upstream (check resolv.conf) forwards to this server", g.name)
		}
	}
	g.next.ServeDNS(w, r)
}

// probe sends the query to the server at addr a few times until it gets an
// answer: the forwarded query either resolves (no loop) or comes back.
func (g *loopGuard) probe(ctx context.Context, addr string, log *slog.Logger) {
	m := new(dns.Msg)
	m.SetQuestion(g.name, dns.TypeHINFO)
	c := &dns.Client{Timeout: 3 * time.Second}
	for range 3 {
		if ctx.Err() != nil {
			return
		}
		if _, _, err := c.ExchangeContext(ctx, m, addr); err == nil {
			return
		}
	}
	log.Debug("loop probe got no answer", "name", g.name)
}

// ServeFast lets the resolver's fast path through: the probe is an HINFO
// query for a name outside the cluster zones, which the fast path never
// answers, so it still reaches ServeDNS.
func (g *loopGuard) ServeFast(req, out []byte, v6 bool) (int, bool) {
	if f, ok := g.next.(resolver.FastHandler); ok {
		return f.ServeFast(req, out, v6)
	}
	return 0, false
}
