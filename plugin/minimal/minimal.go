// Package minimal is the minimal directive's handler: a positive answer
// goes out without its authority and additional sections, which clients do
// not need, so that it is smaller. Negative answers, delegations and errors
// keep theirs (the SOA of a negative answer is what resolvers cache by).
package minimal

import (
	"context"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "minimal"

// Handler trims the replies of the handlers after it.
type Handler struct {
	Next plugin.Handler
}

// Name implements plugin.Handler.
func (h *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler. The trim depends on the reply alone,
// so the fast path may keep what it makes.
func (h *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	m := plugin.Next(ctx, h.Next, st)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		return m
	}
	opt := m.IsEdns0()
	m.Ns, m.Extra = nil, nil
	if opt != nil {
		m.Extra = []dns.RR{opt}
	}
	return m
}

var _ plugin.Handler = (*Handler)(nil)
