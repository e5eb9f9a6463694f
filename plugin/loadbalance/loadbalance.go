// Package loadbalance is the loadbalance directive's handler: it puts the
// address records of every reply in random order (round_robin, CoreDNS's
// only policy), after the other records, so that clients that take the
// first address spread over all of them.
package loadbalance

import (
	"context"
	"math/rand/v2"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "loadbalance"

// Handler shuffles the replies of the handlers after it.
type Handler struct {
	Next plugin.Handler
}

// Name implements plugin.Handler.
func (l *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler. It tells the fast path, through
// st.Shuffle, to shuffle the replies it keeps the same way.
func (l *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	st.Shuffle = true
	m := plugin.Next(ctx, l.Next, st)
	Shuffle(m.Answer)
	return m
}

// Shuffle puts the address records of an answer in random order, after
// everything else (CNAMEs first), as CoreDNS's loadbalance does.
func Shuffle(rrs []dns.RR) {
	var addrs, rest []dns.RR
	for _, rr := range rrs {
		if t := rr.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
			addrs = append(addrs, rr)
		} else {
			rest = append(rest, rr)
		}
	}
	if len(addrs) < 2 {
		return
	}
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	copy(rrs, rest)
	copy(rrs[len(rest):], addrs)
}

var _ plugin.Handler = (*Handler)(nil)
