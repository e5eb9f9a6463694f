// Package any is the any directive's handler: it answers every query of
// type ANY with a single HINFO record, as RFC 8482 section 4.2 allows, so
// that ANY is useless for amplification and costs nothing to answer.
package any

import (
	"context"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "any"

// Handler answers ANY queries itself.
type Handler struct {
	Next plugin.Handler
}

// Name implements plugin.Handler.
func (a *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler.
func (a *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	if st.Type != dns.TypeANY {
		return plugin.Next(ctx, a.Next, st)
	}
	m := st.Reply()
	m.Answer = []dns.RR{&dns.HINFO{
		Hdr: dns.RR_Header{Name: st.Req.Question[0].Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 8482},
		Cpu: "ANY obsoleted", Os: "See RFC 8482",
	}}
	st.By = Name
	return m
}

var _ plugin.Handler = (*Handler)(nil)
