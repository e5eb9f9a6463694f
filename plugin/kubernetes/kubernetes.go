package kubernetes

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/zones"
)

// Name is the directive's name.
const Name = "kubernetes"

// maxCNAMEChain bounds how many in-zone CNAMEs an answer follows.
const maxCNAMEChain = 8

// Errors behind the SERVFAIL replies of the cluster zones.
var (
	ErrNotSynced = errors.New("zone not synced")
	ErrCNAMELoop = errors.New("CNAME loop in the cluster zone")
)

// Handler answers the cluster zones of a server block.
type Handler struct {
	Zone *zones.Zone
	// Fallthrough lists the zones (lower case, fully qualified) whose
	// nonexistent names go on to the next handler instead of NXDOMAIN; "."
	// covers every name.
	Fallthrough []string
	// Lookup, when set, resolves the target of an ExternalName (or of a
	// CNAME chain) that leaves the cluster zones through the rest of the
	// server block (forward, cache), as CoreDNS does through its own
	// server: the target's records follow the CNAME. Without it, or when
	// nothing in the block answers the target, the CNAME is answered alone.
	Lookup plugin.Lookup
	// Expansion, when set, counts a client's search-path expansion: a
	// query for a name below a cluster zone (not a reverse zone) that does
	// not exist, answered NXDOMAIN here.
	Expansion func()
	Next      plugin.Handler
}

// New returns the handler of zone z.
func New(z *zones.Zone, fall []string, next plugin.Handler) *Handler {
	return &Handler{Zone: z, Fallthrough: fall, Next: next}
}

// Name implements plugin.Handler.
func (k *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler.
func (k *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	zone := k.Zone.Match(st.Name)
	if zone == "" {
		return plugin.Next(ctx, k.Next, st)
	}
	if st.Class != dns.ClassINET && st.Class != dns.ClassANY {
		return st.Error("", dns.RcodeRefused)
	}
	if !k.Zone.Synced() {
		// Never a false NXDOMAIN: until the first full view, we do not know.
		st.Err = ErrNotSynced
		return st.Error(Name, dns.RcodeServerFailure)
	}
	switch st.Type {
	case dns.TypeAXFR, dns.TypeIXFR:
		return st.Error(Name, dns.RcodeRefused)
	}
	m := st.Reply()
	ok, external := k.authoritative(m, st.Name, st.Req.Question[0].Name, zone, st.Type)
	if !ok {
		// Fell through: the next handlers answer as if we had not seen it.
		return plugin.Next(ctx, k.Next, st)
	}
	switch {
	case m.Rcode == dns.RcodeServerFailure:
		st.Err = ErrCNAMELoop
	case m.Rcode == dns.RcodeNameError && len(m.Answer) == 0 && k.Expansion != nil && st.Remote != nil && !Reverse(zone):
		// Not for the fast path's trial run (no client): the fast path
		// counts the replies it serves itself.
		k.Expansion()
	}
	st.By, st.Authority = Name, k.Zone
	if external != "" {
		return k.chase(ctx, st, m, external)
	}
	return m
}

// chase completes m, whose CNAME chain leaves the cluster zones at target,
// with the answer to target that Lookup finds: its records after the CNAME,
// its rcode (NXDOMAIN, or NOERROR) and, for a negative answer, its
// authority (the SOA a resolver caches the negative answer by, RFC 2308).
// A target nothing in the block answers (REFUSED, or no Lookup) leaves the
// CNAME alone, for the client to resolve; a failed lookup is SERVFAIL.
func (k *Handler) chase(ctx context.Context, st *plugin.State, m *dns.Msg, target string) *dns.Msg {
	up := k.Lookup.Chase(ctx, st, target, st.Type)
	if up == nil {
		return m
	}
	// The reply holds the upstream's data now: not the cluster zone's
	// alone, so the fast path must not keep it.
	st.NoFast = true
	switch up.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	case dns.RcodeRefused:
		return m
	default:
		st.Err = fmt.Errorf("ExternalName target %s: the lookup answered %s", target, dns.RcodeToString[up.Rcode])
		return st.Error(Name, dns.RcodeServerFailure)
	}
	m.Rcode = up.Rcode
	m.Truncated = m.Truncated || up.Truncated
	m.Answer = append(m.Answer, up.Answer...)
	for _, rr := range up.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			// A negative answer: its authority section (the SOA, and
			// its signatures or NSECs when the client asked DO).
			m.Ns = append(m.Ns, up.Ns...)
			break
		}
	}
	return m
}

// Reverse reports whether zone is a reverse-mapping zone (below
// in-addr.arpa. or ip6.arpa.), whose names are no search path's.
func Reverse(zone string) bool {
	return plugin.InZone(zone, "in-addr.arpa.") || plugin.InZone(zone, "ip6.arpa.")
}

func (k *Handler) fallsThrough(name string) bool {
	for _, z := range k.Fallthrough {
		if plugin.InZone(name, z) {
			return true
		}
	}
	return false
}

// authoritative answers name from the zone into m. It returns false when the
// name does not exist and falls through, and the target of a CNAME that
// leaves our zones when the answer ends there.
func (k *Handler) authoritative(m *dns.Msg, name, asked, zone string, qtype uint16) (ok bool, external string) {
	z := k.Zone
	m.Authoritative = true
	n := z.Lookup(name)
	if n == nil {
		if k.fallsThrough(name) {
			return false, ""
		}
		k.negative(m, zone, dns.RcodeNameError)
		return true, ""
	}
	for range maxCNAMEChain {
		if cset := n.Get(dns.TypeCNAME); cset != nil && qtype != dns.TypeCNAME {
			m.Answer = appendOwned(m.Answer, cset.RRs, name, asked)
			target := cset.RRs[0].(*dns.CNAME).Target
			tzone := z.Match(target)
			if tzone == "" {
				return true, target // outside our zones: Lookup resolves it
			}
			name, asked, zone = target, target, tzone
			if n = z.Lookup(target); n == nil {
				k.negative(m, zone, dns.RcodeNameError)
				return true, ""
			}
			continue
		}
		set := n.Get(qtype)
		if qtype == dns.TypeANY {
			// RFC 8482 4.2: one RRset, not every one at the name. ANY is
			// what amplification floods ask, and no client needs more.
			set = anySet(n)
		}
		if set == nil {
			k.negative(m, zone, dns.RcodeSuccess)
			return true, ""
		}
		m.Answer = appendOwned(m.Answer, set.RRs, name, asked)
		m.Extra = append(m.Extra, set.Extra...)
		return true, ""
	}
	// A CNAME loop inside our own zones.
	m.Rcode = dns.RcodeServerFailure
	return true, ""
}

// anySet is the RRset that answers ANY at n: the one of the lowest type,
// so the answer does not depend on the order the sets were built in (a
// service name answers its A set, or AAAA for a single-stack IPv6 one). It
// is nil for an empty non-terminal.
func anySet(n *zones.Node) *zones.RRSet {
	var best *zones.RRSet
	for i := range n.Sets {
		if s := &n.Sets[i]; len(s.RRs) > 0 && (best == nil || s.Type < best.Type) {
			best = s
		}
	}
	return best
}

// negative makes m a NODATA (RcodeSuccess) or NXDOMAIN answer with the SOA
// of zone in authority; its TTL is the negative-caching TTL (RFC 2308).
func (k *Handler) negative(m *dns.Msg, zone string, rcode int) {
	m.Rcode = rcode
	if soa := k.Zone.SOA(zone); soa != nil {
		m.Ns = append(m.Ns, soa)
	}
}

// appendOwned appends rrs, giving records owned by name the letter case the
// client asked with; records are shared, so such a record is copied.
func appendOwned(dst, rrs []dns.RR, name, asked string) []dns.RR {
	if name == asked {
		return append(dst, rrs...)
	}
	for _, rr := range rrs {
		if rr.Header().Name == name {
			rr = dns.Copy(rr)
			rr.Header().Name = asked
		}
		dst = append(dst, rr)
	}
	return dst
}

var _ plugin.Handler = (*Handler)(nil)
