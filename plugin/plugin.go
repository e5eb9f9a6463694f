package plugin

import (
	"context"
	"net"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Handler is one directive's part in answering a query: it answers st's
// query or hands it on to the next handler of its chain, and returns the
// reply. A reply carries the query's ID and question; Reply makes one.
type Handler interface {
	// Name is the directive's name, used for metrics and logs (the plugin
	// label of *_dns_responses_total).
	Name() string
	ServeDNS(ctx context.Context, st *State) *dns.Msg
}

// Runner is a handler with background work (re-reading a file, reporting
// on a timer): Run does it until ctx ends. The server runs it while the
// configuration that built the handler is in use.
type Runner interface {
	Run(ctx context.Context)
}

type quiet struct{}

// Quiet marks the lookups made under ctx as the server's own work on a
// client's behalf (autopath walking a search path): the client asked one
// query, and log writes one line for it, as CoreDNS, whose autopath walks
// the handlers after it, not its log.
func Quiet(ctx context.Context) context.Context { return context.WithValue(ctx, quiet{}, true) }

// IsQuiet reports whether ctx's lookups are marked Quiet.
func IsQuiet(ctx context.Context) bool { return ctx.Value(quiet{}) != nil }

// AdvertisedUDPSize is the EDNS buffer size replies offer: the DNS flag day
// 2020 value, which avoids IP fragmentation.
const AdvertisedUDPSize = 1232

// State is one query on its way down a chain, and what the handlers it met
// learned about it.
type State struct {
	// Req is the query as this handler sees it: a handler that rewrites
	// the question (rewrite) hands on a copy, so Req is never shared with
	// the caller's message once changed.
	Req *dns.Msg
	// Name is Req's question name in lower case; Type and Class are its
	// type and class.
	Name        string
	Type, Class uint16
	// Zone is the zone of the server block that took the query.
	Zone string
	// Remote is the client's address; nil for a query the server made up
	// itself (the fast path's trial run, to learn whether a reply can be
	// kept), which handlers with side effects (log, errors) must not act
	// on. Proto is "udp" or "tcp".
	Remote net.Addr
	Proto  string

	// By is the name of the handler that made the reply; Err is what went
	// wrong behind a SERVFAIL, for the errors directive.
	By  string
	Err error
	// NoFast says the reply depends on more than the question (the
	// client's address, a log line to write, a random choice), so the
	// wire fast path must not keep it.
	NoFast bool
	// Shuffle says address records are shuffled in every reply
	// (loadbalance), which the fast path repeats on the kept reply.
	Shuffle bool
	// BufSize, when set, caps the size of a UDP reply below the client's
	// buffer (bufsize).
	BufSize int
	// Deps are the versions of the handlers that handed the query on from
	// data that can change (a hosts file): the fast path keeps the reply
	// only while each still holds.
	Deps []Dep
	// Authority is what an authoritative in-memory answer was made from
	// (the cluster zone), set by the handler that made it; the fast path
	// keeps such replies while it holds.
	Authority any
}

// Version counts the changes of a handler's data.
type Version struct{ n atomic.Uint64 }

// Bump records a change.
func (v *Version) Bump() { v.n.Add(1) }

// Dep is a Version as a query saw it.
type Dep struct {
	V *Version
	N uint64
}

// Holds reports whether the version is still the one seen.
func (d Dep) Holds() bool { return d.V.n.Load() == d.N }

// DependOn records that st's reply depends on v's data as it is now: a
// handler calls it before it hands a query on because its data has nothing
// for it, since a change could make it answer instead.
func (st *State) DependOn(v *Version) {
	st.Deps = append(st.Deps, Dep{V: v, N: v.n.Load()})
}

// NewState returns the state of query r, whose question the server has
// checked, from remote over proto, for the server block zone.
func NewState(r *dns.Msg, zone string, remote net.Addr, proto string) *State {
	q := r.Question[0]
	return &State{Req: r, Name: strings.ToLower(q.Name), Type: q.Qtype, Class: q.Qclass, Zone: zone, Remote: remote, Proto: proto}
}

// SetQuestion replaces the question of st's query with name, type and
// class: the query is copied first, so that the caller's message is never
// changed.
func (st *State) SetQuestion(name string, qtype, qclass uint16) {
	r := st.Req.Copy()
	r.Question[0] = dns.Question{Name: name, Qtype: qtype, Qclass: qclass}
	st.Req, st.Name, st.Type, st.Class = r, strings.ToLower(name), qtype, qclass
}

// Reply returns an empty reply to st's query: its ID, question and RD bit,
// RA clear, and an OPT with our buffer size and the query's DO bit when the
// query had one.
func (st *State) Reply() *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(st.Req)
	m.RecursionAvailable = false
	if o := st.Req.IsEdns0(); o != nil {
		m.SetEdns0(AdvertisedUDPSize, o.Do())
	}
	return m
}

// Error returns an empty reply with rcode, made by the handler named by.
func (st *State) Error(by string, rcode int) *dns.Msg {
	m := st.Reply()
	m.Rcode = rcode
	st.By = by
	return m
}

// Next hands st to next, or answers REFUSED when the chain ends: no
// handler of the block covers the name.
func Next(ctx context.Context, next Handler, st *State) *dns.Msg {
	if next == nil {
		return st.Error("", dns.RcodeRefused)
	}
	return next.ServeDNS(ctx, st)
}

// InZone reports whether name is zone or below it; both lower case and
// fully qualified, "." being every name.
func InZone(name, zone string) bool {
	if zone == "." {
		return true
	}
	if !strings.HasSuffix(name, zone) {
		return false
	}
	return len(name) == len(zone) || name[len(name)-len(zone)-1] == '.'
}

// Zones is a list of zones, lower case and fully qualified.
type Zones []string

// Matches returns the longest of zs that name is in, or "" when none is.
func (zs Zones) Matches(name string) string {
	best := ""
	for _, z := range zs {
		if InZone(name, z) && (best == "" || zoneLen(z) > zoneLen(best)) {
			best = z
		}
	}
	return best
}

func zoneLen(z string) int {
	if z == "." {
		return 0
	}
	return len(z)
}
