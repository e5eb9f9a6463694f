package rewrite

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "rewrite"

// Handler applies a server block's rewrite rules.
type Handler struct {
	rules []rule
	Next  plugin.Handler
}

// New returns the handler of rules, the block's rewrite directives in file
// order, in front of next.
func New(rules []*config.Rewrite, next plugin.Handler) (*Handler, error) {
	h := &Handler{Next: next}
	for _, c := range rules {
		r, err := newRule(c)
		if err != nil {
			return nil, fmt.Errorf("rewrite on line %d: %w", c.Line, err)
		}
		h.rules = append(h.rules, r)
	}
	return h, nil
}

// Name implements plugin.Handler.
func (h *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler. When a rule matched it hands on the
// rewritten query (a copy: the caller's is never changed), keeps the reply
// off the fast path, and reverts the reply: the question as asked, then
// the response rules of the rules that matched, the last one's first.
func (h *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	orig, name, qtype, qclass := st.Req, st.Name, st.Type, st.Class
	var resp []response
	matched := false
	for i := range h.rules {
		r := &h.rules[i]
		rs, ok := r.apply(st)
		if !ok {
			continue
		}
		matched = true
		if q := st.Req.Question[0].Name; !validName(q) {
			st.Req, st.Name, st.Type, st.Class = orig, name, qtype, qclass
			st.Err = fmt.Errorf("rewrite: invalid name after rewrite: %q", q)
			return st.Error(Name, dns.RcodeServerFailure)
		}
		resp = append(resp, rs...)
		if !r.cont {
			break
		}
	}
	if !matched {
		return plugin.Next(ctx, h.Next, st)
	}
	// The reply no longer follows from the asked name alone.
	st.NoFast = true
	m := plugin.Next(ctx, h.Next, st)
	// The handlers before this one see the query as the client asked it.
	st.Req, st.Name, st.Type, st.Class = orig, name, qtype, qclass
	return revert(m, orig, resp)
}

func validName(s string) bool {
	_, ok := dns.IsDomainName(s)
	return ok && dns.IsFqdn(s) && len(s) <= 255
}

// revert puts reply m back in the terms of the client's query orig: its
// question, and the response rules applied to
// every record but the OPT (records are copied first: a handler's records
// may be shared with its zone or cache).
func revert(m *dns.Msg, orig *dns.Msg, rules []response) *dns.Msg {
	m.Question = []dns.Question{orig.Question[0]}
	if len(rules) == 0 {
		return m
	}
	for _, sec := range []*[]dns.RR{&m.Answer, &m.Ns, &m.Extra} {
		if len(*sec) == 0 {
			continue
		}
		out := make([]dns.RR, len(*sec))
		for i, rr := range *sec {
			if rr.Header().Rrtype != dns.TypeOPT {
				rr = dns.Copy(rr)
				for j := len(rules) - 1; j >= 0; j-- {
					rules[j].record(rr)
				}
			}
			out[i] = rr
		}
		*sec = out
	}
	for j := len(rules) - 1; j >= 0; j-- {
		if mr, ok := rules[j].(messageRule); ok {
			mr.message(m)
		}
	}
	return m
}

// response is a response rule: it changes one record of the reply.
type response interface {
	record(rr dns.RR)
}

// messageRule is a response rule that changes the reply's header instead.
type messageRule interface {
	message(m *dns.Msg)
}

// mapper maps a name to another, or returns it unchanged.
type mapper interface {
	mapName(s string) string
}

// nameRule rewrites record owner names.
type nameRule struct{ m mapper }

func (r nameRule) record(rr dns.RR) { rr.Header().Name = r.m.mapName(rr.Header().Name) }

// valueRule rewrites the names records point to.
type valueRule struct{ m mapper }

func (r valueRule) record(rr dns.RR) {
	switch v := rr.(type) {
	case *dns.CNAME:
		v.Target = r.m.mapName(v.Target)
	case *dns.DNAME:
		v.Target = r.m.mapName(v.Target)
	case *dns.SRV:
		v.Target = r.m.mapName(v.Target)
	case *dns.MX:
		v.Mx = r.m.mapName(v.Mx)
	case *dns.NS:
		v.Ns = r.m.mapName(v.Ns)
	case *dns.PTR:
		v.Ptr = r.m.mapName(v.Ptr)
	case *dns.NAPTR:
		v.Replacement = r.m.mapName(v.Replacement)
	case *dns.SOA:
		v.Ns = r.m.mapName(v.Ns)
	}
}

// remap maps name from, and the names below it, back to to: the auto
// answer of a rewrite that made from out of to. Letter case is ignored.
type remap struct{ from, to string }

func (r remap) mapName(s string) string {
	if strings.EqualFold(s, r.from) {
		return r.to
	}
	if n := len(s) - len(r.from); n > 0 && s[n-1] == '.' && strings.EqualFold(s[n:], r.from) {
		return s[:n] + r.to
	}
	return s
}

// suffixMap replaces the suffix from by to: the auto answer of a suffix
// rule.
type suffixMap struct{ from, to string }

func (r suffixMap) mapName(s string) string {
	if n := len(s) - len(r.from); n >= 0 && strings.EqualFold(s[n:], r.from) {
		return s[:n] + r.to
	}
	return s
}

// ttlRule clamps TTLs into [min, max].
type ttlRule struct{ min, max uint32 }

func (r ttlRule) record(rr dns.RR) {
	h := rr.Header()
	h.Ttl = max(r.min, min(h.Ttl, r.max))
}

// rcodeRule changes the rcode from to to.
type rcodeRule struct{ from, to int }

func (rcodeRule) record(dns.RR) {}

func (r rcodeRule) message(m *dns.Msg) {
	if m.Rcode == r.from {
		m.Rcode = r.to
	}
}

var _ plugin.Handler = (*Handler)(nil)
