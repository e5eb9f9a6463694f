package plugin

import (
	"context"

	"github.com/miekg/dns"
)

// Lookup resolves name and qtype through the handlers of the server block
// that took st's query, from the start of its chain, as CoreDNS's upstream
// lookups go through its own server: how a handler that answers with a
// CNAME (template, kubernetes for an ExternalName) finds the target's
// records. The lookup's query is like st's (RD and CD bits, EDNS buffer and
// DO bit, client and transport). It returns nil when it cannot look the name
// up (outside the block's zones).
type Lookup func(ctx context.Context, st *State, name string, qtype uint16) *dns.Msg

// MaxLookups bounds the lookups made within one another for one query: a
// CNAME whose target's lookup comes back to a handler that looks a CNAME
// up again (templates whose CNAMEs make a loop, a rewrite that sends an
// ExternalName's target back into the cluster zone) stops there.
const MaxLookups = 4

type lookupDepth struct{}

// Chase looks name and qtype up with l, one level deeper than ctx. It
// returns nil when l is nil or MaxLookups lookups already enclose this one.
func (l Lookup) Chase(ctx context.Context, st *State, name string, qtype uint16) *dns.Msg {
	if l == nil {
		return nil
	}
	depth, _ := ctx.Value(lookupDepth{}).(int)
	if depth >= MaxLookups {
		return nil
	}
	return l(context.WithValue(ctx, lookupDepth{}, depth+1), st, name, qtype)
}

// LookupState returns the state of a lookup of name and qtype made for
// st's query, in a block whose zone for name is zone: a new query with
// st's RD and CD bits and its EDNS buffer size and DO bit (no options),
// from st's client over st's transport. st may be nil (a plain query).
func LookupState(st *State, name string, qtype uint16, zone string) *State {
	r := new(dns.Msg)
	r.SetQuestion(dns.Fqdn(name), qtype)
	if st == nil {
		return NewState(r, zone, nil, "udp")
	}
	r.RecursionDesired, r.CheckingDisabled = st.Req.RecursionDesired, st.Req.CheckingDisabled
	if o := st.Req.IsEdns0(); o != nil {
		r.SetEdns0(o.UDPSize(), o.Do())
	}
	return NewState(r, zone, st.Remote, st.Proto)
}
