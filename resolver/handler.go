package resolver

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/forward"
	"github.com/svcdisc/svcdisc/zones"
)

// advertisedUDPSize is the EDNS buffer size we offer: the DNS flag day 2020
// value, which avoids IP fragmentation.
const advertisedUDPSize = 1232

// maxCNAMEChain bounds how many in-zone CNAMEs an answer follows.
const maxCNAMEChain = 8

// Kubernetes is the cluster zone of a server block and what falls through it.
type Kubernetes struct {
	Zone *zones.Zone
	// Fallthrough lists the zones (lower case, fully qualified) whose
	// nonexistent names go on to the next handler instead of NXDOMAIN; "."
	// covers every name.
	Fallthrough []string
}

func (k *Kubernetes) fallsThrough(name string) bool {
	for _, z := range k.Fallthrough {
		if inZone(name, z) {
			return true
		}
	}
	return false
}

// Upstream answers queries from other resolvers; *forward.Forwarder is one.
type Upstream interface {
	Exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error)
}

// Forward sends the names the cluster zone does not answer upstream.
type Forward struct {
	// From is the zone forwarded ("." for every name); Except lists zones
	// that are not.
	From     string
	Except   []string
	Upstream Upstream
	// Timeout bounds one query upstream, retries included.
	Timeout time.Duration
}

func (f *Forward) covers(name string) bool {
	if !inZone(name, f.From) {
		return false
	}
	for _, z := range f.Except {
		if inZone(name, z) {
			return false
		}
	}
	return true
}

// Cache keeps upstream answers for the names of its zones.
type Cache struct {
	Zones []string
	Cache *cache.Cache
}

func (c *Cache) covers(name string) bool {
	for _, z := range c.Zones {
		if inZone(name, z) {
			return true
		}
	}
	return false
}

// Block is one server block: the zones it serves and how.
type Block struct {
	// Zones are lower case and fully qualified; "." is every name.
	Zones      []string
	Kubernetes *Kubernetes
	// Forward and Cache take the names Kubernetes does not answer. Cluster
	// answers are never cached: they come from memory already, and an
	// endpoint change must not hide behind a cache TTL.
	Forward *Forward
	Cache   *Cache
	// LoadBalance shuffles address records in every answer.
	LoadBalance bool
	// Log writes one line per query, Errors one per failure.
	Log, Errors bool
}

// Handler answers queries for the server blocks that share a listen address.
type Handler struct {
	blocks  []blockZone
	log     *slog.Logger
	observe Observer
	meters  Meters
	wire    *wireCache // replies in wire form, for ServeFast

	meterMu    sync.Mutex
	meterPairs map[meterKey]*meterPair
}

// blockZone is one (zone, block) pair; a query goes to the block with the
// longest zone containing its name, as in CoreDNS.
type blockZone struct {
	zone  string
	block *Block
}

// NewHandler returns a Handler for blocks. A nil logger logs to slog.Default.
func NewHandler(blocks []*Block, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{log: log, wire: newWireCache()}
	for _, b := range blocks {
		for _, z := range b.Zones {
			h.blocks = append(h.blocks, blockZone{zone: z, block: b})
		}
	}
	slices.SortStableFunc(h.blocks, func(a, b blockZone) int { return zoneLen(b.zone) - zoneLen(a.zone) })
	return h
}

func zoneLen(z string) int {
	if z == "." {
		return 0
	}
	return len(z)
}

// ZoneOf returns the block's zone that name (any case) falls in, the
// longest, or "." when none does.
func (b *Block) ZoneOf(name string) string {
	name = strings.ToLower(name)
	best := "."
	for _, z := range b.Zones {
		if inZone(name, z) && zoneLen(z) > zoneLen(best) {
			best = z
		}
	}
	return best
}

func (h *Handler) match(name string) *Block {
	for _, bz := range h.blocks {
		if inZone(name, bz.zone) {
			return bz.block
		}
	}
	return nil
}

// ServeDNS implements dns.Handler.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	start := time.Now()
	m, b, by := h.resolve(context.Background(), r)
	size := dns.MaxMsgSize
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size = dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
	}
	out, err := pack(m, size)
	if err == nil {
		_, err = w.Write(out)
	}
	if h.observe != nil {
		h.observe(w, r, m, b, by, len(out), time.Since(start))
	}
	if b == nil {
		return
	}
	q := r.Question[0]
	if err != nil && b.Errors {
		h.log.Error("write response", "remote", w.RemoteAddr().String(), "name", q.Name, "err", err)
	}
	if m.Rcode == dns.RcodeServerFailure && by == byKubernetes && b.Errors {
		reason := "CNAME loop in the cluster zone"
		if !b.Kubernetes.Zone.Synced() {
			reason = "zone not synced"
		}
		h.log.Error("server failure", "name", q.Name, "type", dns.TypeToString[q.Qtype], "reason", reason)
	}
	if b.Log {
		h.log.Info("query",
			"remote", w.RemoteAddr().String(), "id", r.Id,
			"type", dns.TypeToString[q.Qtype], "class", dns.ClassToString[q.Qclass], "name", q.Name,
			"proto", protoOf(w), "rcode", dns.RcodeToString[m.Rcode], "by", by,
			"truncated", m.Truncated, "duration", time.Since(start))
	}
}

// Observer sees every answered query, for metrics. by is who answered:
// "kubernetes", "cache", "forward", or "" (refused or malformed); size is
// the bytes written.
type Observer func(w dns.ResponseWriter, r, m *dns.Msg, b *Block, by string, size int, d time.Duration)

// pack packs m for a client buffer of size bytes. A small answer (the
// common case) is packed once and only cut down and packed again should it
// not fit; a large one is cut down first, sparing a pack that would be
// thrown away.
func pack(m *dns.Msg, size int) ([]byte, error) {
	m.Compress = true
	if len(m.Answer)+len(m.Ns)+len(m.Extra) > smallAnswer {
		fit(m, size)
		return m.Pack()
	}
	out, err := m.Pack()
	if err != nil || len(out) <= size {
		return out, err
	}
	fit(m, size)
	return m.Pack()
}

// smallAnswer is the record count below which an answer is assumed to fit
// 512 bytes: a dozen address records do.
const smallAnswer = 12

// SetObserver installs o; call before serving.
func (h *Handler) SetObserver(o Observer) { h.observe = o }

func protoOf(w dns.ResponseWriter) string {
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		return "udp"
	}
	return "tcp"
}

// fit makes m fit the client's buffer: additional records go first, which
// does not need TC (RFC 2181 9); anything more sets TC.
func fit(m *dns.Msg, size int) {
	m.Compress = true
	if m.Len() <= size {
		return
	}
	var opt []dns.RR
	if o := m.IsEdns0(); o != nil {
		opt = []dns.RR{o}
	}
	m.Extra = opt
	if m.Len() <= size {
		return
	}
	m.Truncate(size)
}

// answer builds the response to r and says which block answered it (nil
// when none did).
func (h *Handler) answer(r *dns.Msg) (*dns.Msg, *Block) {
	m, b, _ := h.resolve(context.Background(), r)
	return m, b
}

// Who answered a query, for logs and metrics; byNext says the cluster zone
// hands the query on.
const (
	byKubernetes = "kubernetes"
	byCache      = "cache"
	byForward    = "forward"
	byNext       = "next"
)

// resolve builds the response to r and says which block and which part of
// it answered ("" when nothing did).
func (h *Handler) resolve(ctx context.Context, r *dns.Msg) (*dns.Msg, *Block, string) {
	m, b, by := h.authority(r)
	if by != byNext {
		return m, b, by
	}
	m, by = h.next(ctx, r, m, b)
	if b.LoadBalance {
		shuffle(m.Answer)
	}
	return m, b, by
}

// authority answers from the cluster zone, or says byNext when the name is
// for the handlers after it.
func (h *Handler) authority(r *dns.Msg) (*dns.Msg, *Block, string) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = false
	reqOpt := r.IsEdns0()
	if reqOpt != nil {
		m.SetEdns0(advertisedUDPSize, reqOpt.Do())
		if reqOpt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers // the OPT carries its upper bits
			return m, nil, ""
		}
	}
	if r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return m, nil, ""
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m, nil, ""
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if _, ok := dns.IsDomainName(name); !ok {
		m.Rcode = dns.RcodeFormatError
		return m, nil, ""
	}
	b := h.match(name)
	if b == nil {
		m.Rcode = dns.RcodeRefused
		return m, nil, ""
	}
	k := b.Kubernetes
	if k == nil {
		return m, b, byNext
	}
	zone := k.Zone.Match(name)
	if zone == "" {
		return m, b, byNext
	}
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return m, b, ""
	}
	if !k.Zone.Synced() {
		// Never a false NXDOMAIN: until the first full view, we do not know.
		m.Rcode = dns.RcodeServerFailure
		return m, b, byKubernetes
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused
		return m, b, byKubernetes
	}
	if !k.authoritative(m, name, q.Name, zone, q.Qtype) {
		// Fell through: the next handlers answer as if we had not seen it.
		m.Authoritative = false
		m.Answer, m.Ns = nil, nil
		return m, b, byNext
	}
	if b.LoadBalance {
		shuffle(m.Answer)
	}
	return m, b, byKubernetes
}

// next answers from the cache or upstream. m is the reply prepared so far
// (header, question, OPT); what the upstream says replaces its sections.
func (h *Handler) next(ctx context.Context, r, m *dns.Msg, b *Block) (*dns.Msg, string) {
	name := strings.ToLower(r.Question[0].Name)
	f := b.Forward
	if f == nil || !f.covers(name) {
		m.Rcode = dns.RcodeRefused
		return m, ""
	}
	c := b.Cache
	if c != nil && !c.covers(name) {
		c = nil
	}
	if c != nil {
		if resp, hit := c.Cache.Get(r); hit&^cache.Prefetch == cache.Fresh {
			if hit&cache.Prefetch != 0 {
				go h.prefetch(r.Copy(), f, c)
			}
			return upstreamReply(m, resp), byCache
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	resp, err := f.Upstream.Exchange(ctx, r)
	if err != nil {
		if c != nil {
			if stale := c.Cache.GetStale(r); stale != nil {
				return upstreamReply(m, stale), byCache
			}
		}
		if b.Errors {
			h.log.Error("forward", "name", r.Question[0].Name, "type", dns.TypeToString[r.Question[0].Qtype], "err", err)
		}
		m.Rcode = dns.RcodeServerFailure
		if errors.Is(err, forward.ErrLimit) {
			m.Rcode = dns.RcodeRefused // shed load at once rather than queue
		}
		return m, byForward
	}
	if c != nil {
		c.Cache.Set(r, resp)
	}
	return upstreamReply(m, resp), byForward
}

// prefetch refreshes a popular cache entry before it expires.
func (h *Handler) prefetch(r *dns.Msg, f *Forward, c *Cache) {
	ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
	defer cancel()
	if resp, err := f.Upstream.Exchange(ctx, r); err == nil {
		c.Cache.Set(r, resp)
	}
}

// upstreamReply copies an upstream answer into our reply m: its sections,
// rcode and flags, but our ID, question and EDNS.
func upstreamReply(m, resp *dns.Msg) *dns.Msg {
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

// shuffle puts the address records of an answer in random order, after
// everything else (CNAMEs first), as CoreDNS's loadbalance does.
func shuffle(rrs []dns.RR) {
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

// authoritative answers name from the zone into m. It returns false when the
// name does not exist and falls through.
func (k *Kubernetes) authoritative(m *dns.Msg, name, asked, zone string, qtype uint16) bool {
	z := k.Zone
	m.Authoritative = true
	n := z.Lookup(name)
	if n == nil {
		if k.fallsThrough(name) {
			return false
		}
		k.negative(m, zone, dns.RcodeNameError)
		return true
	}
	for range maxCNAMEChain {
		if cset := n.Get(dns.TypeCNAME); cset != nil && qtype != dns.TypeCNAME {
			m.Answer = appendOwned(m.Answer, cset.RRs, name, asked)
			target := cset.RRs[0].(*dns.CNAME).Target
			tzone := z.Match(target)
			if tzone == "" {
				return true // outside our zones: the client resolves it
			}
			name, asked, zone = target, target, tzone
			if n = z.Lookup(target); n == nil {
				k.negative(m, zone, dns.RcodeNameError)
				return true
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
			return true
		}
		m.Answer = appendOwned(m.Answer, set.RRs, name, asked)
		m.Extra = append(m.Extra, set.Extra...)
		return true
	}
	// A CNAME loop inside our own zones.
	m.Rcode = dns.RcodeServerFailure
	return true
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
func (k *Kubernetes) negative(m *dns.Msg, zone string, rcode int) {
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

// inZone reports whether name is zone or below it; both lower case, fully
// qualified.
func inZone(name, zone string) bool {
	if zone == "." {
		return true
	}
	if !strings.HasSuffix(name, zone) {
		return false
	}
	return len(name) == len(zone) || name[len(name)-len(zone)-1] == '.'
}

var _ dns.Handler = (*Handler)(nil)
