package forward

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/forward"
	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "forward"

// Upstream answers queries from other resolvers; *forward.Forwarder is one.
type Upstream interface {
	Exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error)
}

// Handler forwards the names of one zone.
type Handler struct {
	// From is the zone forwarded ("." for every name); Except lists zones
	// that are not.
	From     string
	Except   []string
	Upstream Upstream
	// Timeout bounds one query upstream, retries included.
	Timeout time.Duration
	// NextRcodes are the upstream rcodes that hand the query on to the
	// next handler instead of answering (the next option), and
	// NextOnNodata does so for a NOERROR reply without answers
	// (next_on_nodata); as in CoreDNS, both only act when the next handler
	// is another forward.
	NextRcodes   []int
	NextOnNodata bool
	Next         plugin.Handler
}

// Name implements plugin.Handler.
func (f *Handler) Name() string { return Name }

// Covers reports whether f forwards name (lower case, fully qualified).
func (f *Handler) Covers(name string) bool {
	if !plugin.InZone(name, f.From) {
		return false
	}
	for _, z := range f.Except {
		if plugin.InZone(name, z) {
			return false
		}
	}
	return true
}

// ServeDNS implements plugin.Handler.
func (f *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	if !f.Covers(st.Name) {
		return plugin.Next(ctx, f.Next, st)
	}
	if st.Class == dns.ClassCHAOS {
		// The server's own identity is chaos's to give, or nobody's: an
		// upstream's version.bind would pass for ours.
		return st.Error(Name, dns.RcodeRefused)
	}
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	uctx := ctx
	if st.Proto == "tcp" {
		uctx = forward.WithClientTCP(ctx)
	}
	resp, err := f.Upstream.Exchange(uctx, st.Req)
	if err != nil {
		st.Err = err
		if errors.Is(err, forward.ErrLimit) {
			return st.Error(Name, dns.RcodeRefused) // shed load at once rather than queue
		}
		return st.Error(Name, dns.RcodeServerFailure)
	}
	if _, ok := f.Next.(*Handler); ok {
		if slices.Contains(f.NextRcodes, resp.Rcode) ||
			f.NextOnNodata && resp.Rcode == dns.RcodeSuccess && len(resp.Answer) == 0 {
			return f.Next.ServeDNS(ctx, st)
		}
	}
	st.By = Name
	return UpstreamReply(st.Reply(), resp)
}

// UpstreamReply copies an upstream answer into our reply m: its sections,
// rcode and flags, but our ID, question and EDNS.
func UpstreamReply(m, resp *dns.Msg) *dns.Msg {
	m.Rcode = resp.Rcode
	m.Authoritative = resp.Authoritative
	m.RecursionAvailable = resp.RecursionAvailable
	m.AuthenticatedData = resp.AuthenticatedData
	m.Truncated = resp.Truncated
	m.Answer = resp.Answer
	m.Ns = resp.Ns
	opt := m.IsEdns0()
	m.Extra = m.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			m.Extra = append(m.Extra, rr)
		}
	}
	if opt != nil {
		m.Extra = append(m.Extra, opt)
	}
	return m
}

var _ plugin.Handler = (*Handler)(nil)
