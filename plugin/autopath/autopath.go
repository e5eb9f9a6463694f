package autopath

import (
	"context"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "autopath"

// Results of a query autopath considered (its asked name is NXDOMAIN), the
// result label of svcdisc_autopath_total.
const (
	// Completed: answered with a CNAME to a name further down the path.
	Completed = "completed"
	// NotFound: every name of the path is NXDOMAIN; the asked name's
	// NXDOMAIN is the answer.
	NotFound = "not_found"
	// Skipped: not completed (the client is no known Pod, or its address
	// is ambiguous, or the name is not in its first search domain, or a
	// lookup failed): answered as asked.
	Skipped = "skipped"
)

// Pods finds a client's namespace: *zones.Zone.
type Pods interface {
	// Match returns the cluster zone name is in, "" for none.
	Match(name string) string
	// ClientNamespace returns the namespace whose search path the client
	// at addr uses, when that is certain.
	ClientNamespace(addr netip.Addr) (string, bool)
}

// Handler completes search paths for the names of Zones.
type Handler struct {
	Zones plugin.Zones
	// Search is a fixed search path (from a resolv.conf file), lower case
	// and fully qualified; used when Pods is nil.
	Search []string
	// Pods gives the client's namespace (@kubernetes); HostSearch are the
	// host's search domains, which follow the cluster ones.
	Pods       Pods
	HostSearch []string
	// Lookup resolves the names of the path through the block's chain.
	Lookup plugin.Lookup
	// Count, when set, counts each considered query by result.
	Count func(result string)
	Next  plugin.Handler
}

// Name implements plugin.Handler.
func (h *Handler) Name() string { return Name }

// walking marks the lookups of a walk, which autopath hands on untouched.
type walking struct{}

// ServeDNS implements plugin.Handler.
func (h *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	if ctx.Value(walking{}) != nil || st.Class != dns.ClassINET || h.Zones.Matches(st.Name) == "" || !h.completable(st.Name) {
		return plugin.Next(ctx, h.Next, st)
	}
	m := plugin.Next(ctx, h.Next, st)
	if m == nil || m.Rcode != dns.RcodeNameError {
		// The asked name exists (or failed): every client gets this.
		return m
	}
	// From here the answer depends on the client: the fast path must not
	// keep it, and the cache must not store it (it keeps only forward's).
	st.NoFast = true
	st.By = Name
	if st.Remote == nil {
		return m // the fast path's trial run: no client
	}
	base, path := h.path(st)
	if path == nil {
		h.count(Skipped)
		return m
	}
	// The walk's lookups are the server's own: the chain (cache above
	// all) answers them, but log writes only the client's query.
	wctx := plugin.Quiet(context.WithValue(ctx, walking{}, true))
	result := NotFound
walk:
	for _, s := range path {
		name := base + "."
		if s != "." {
			name += s
		}
		r := h.Lookup.Chase(wctx, st, name, st.Type)
		switch {
		case r == nil:
			// Outside the block, or too deep: the client walks on.
			result = Skipped
			break walk
		case r.Rcode == dns.RcodeNameError:
			continue
		case r.Rcode == dns.RcodeSuccess:
			h.count(Completed)
			return complete(st, r, name)
		}
		// A failure: answer as asked, the client walks on itself.
		result = Skipped
		break
	}
	h.count(result)
	return m
}

func (h *Handler) count(result string) {
	if h.Count != nil {
		h.Count(result)
	}
}

// completable reports whether some client could have name completed: it
// is below a first search domain (<name>.<ns>.svc.<zone> for @kubernetes).
// Other names are handed on untouched, and the fast path may keep them.
func (h *Handler) completable(name string) bool {
	if h.Pods == nil {
		return len(h.Search) > 0 && strings.HasSuffix(name, "."+h.Search[0]) && h.Search[0] != "."
	}
	svc := svcDomain(h.Pods.Match(name))
	if svc == "" || !strings.HasSuffix(name, "."+svc) {
		return false
	}
	return strings.Contains(strings.TrimSuffix(name, "."+svc), ".") // <base>.<ns>
}

func svcDomain(zone string) string {
	switch zone {
	case "":
		return ""
	case ".":
		return "svc."
	}
	return "svc." + zone
}

// path returns the base name of st's query (without the client's first
// search domain) and the rest of the client's search path, ending in "."
// (the base name itself); nil when the query is not to be completed.
func (h *Handler) path(st *plugin.State) (string, []string) {
	if h.Pods == nil {
		return strings.TrimSuffix(st.Name, "."+h.Search[0]), appendDistinct(nil, append(h.Search[1:len(h.Search):len(h.Search)], ".")...)
	}
	ap, err := netip.ParseAddrPort(st.Remote.String())
	if err != nil {
		return "", nil
	}
	ns, ok := h.Pods.ClientNamespace(ap.Addr())
	if !ok {
		return "", nil
	}
	zone := h.Pods.Match(st.Name)
	svc := svcDomain(zone)
	first := ns + "." + svc
	if !strings.HasSuffix(st.Name, "."+first) {
		return "", nil // another namespace's search domain: as asked
	}
	path := appendDistinct(nil, svc, zone)
	path = appendDistinct(path, h.HostSearch...)
	path = appendDistinct(path, ".")
	return strings.TrimSuffix(st.Name, "."+first), path
}

func appendDistinct(path []string, domains ...string) []string {
	for _, d := range domains {
		dup := false
		for _, p := range path {
			dup = dup || p == d
		}
		if !dup {
			path = append(path, d)
		}
	}
	return path
}

// complete is the answer to st's query from r, the answer for name: a
// CNAME from the asked name to name, then r's records. The CNAME's TTL is
// that of r's first record, as CoreDNS's; for NODATA at name it is r's
// negative TTL, so the client learns the alias and that it has no records
// of the type (CoreDNS answers NODATA for the asked name then, without the
// CNAME).
func complete(st *plugin.State, r *dns.Msg, name string) *dns.Msg {
	m := st.Reply()
	m.Authoritative, m.RecursionAvailable, m.Truncated = r.Authoritative, r.RecursionAvailable, r.Truncated
	ttl := negativeTTL(r)
	if len(r.Answer) > 0 {
		ttl = r.Answer[0].Header().Ttl
	}
	cname := &dns.CNAME{Hdr: dns.RR_Header{Name: st.Req.Question[0].Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl}, Target: name}
	m.Answer = append([]dns.RR{cname}, r.Answer...)
	m.Ns = r.Ns
	for _, rr := range r.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			m.Extra = append(m.Extra, rr)
		}
	}
	st.By = Name
	return m
}

// negativeTTL is how long r's NODATA may be cached (RFC 2308: the SOA's
// TTL, at most its minimum field); 5 s without an SOA.
func negativeTTL(r *dns.Msg) uint32 {
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return 5
}
