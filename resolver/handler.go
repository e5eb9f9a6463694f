package resolver

import (
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

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

// Block is one server block: the zones it serves and how.
type Block struct {
	// Zones are lower case and fully qualified; "." is every name.
	Zones      []string
	Kubernetes *Kubernetes
	// Log writes one line per query, Errors one per failure.
	Log, Errors bool
}

// Handler answers queries for the server blocks that share a listen address.
type Handler struct {
	blocks []blockZone
	log    *slog.Logger
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
	h := &Handler{log: log}
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
	m, b := h.answer(r)
	size := dns.MaxMsgSize
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size = dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
	}
	fit(m, size)
	err := w.WriteMsg(m)
	if b == nil {
		return
	}
	if err != nil && b.Errors {
		h.log.Error("write response", "remote", w.RemoteAddr().String(), "name", r.Question[0].Name, "err", err)
	}
	if m.Rcode == dns.RcodeServerFailure && b.Errors {
		h.log.Error("server failure", "name", r.Question[0].Name, "type", dns.TypeToString[r.Question[0].Qtype], "reason", "zone not synced")
	}
	if b.Log {
		q := r.Question[0]
		h.log.Info("query",
			"remote", w.RemoteAddr().String(), "id", r.Id,
			"type", dns.TypeToString[q.Qtype], "class", dns.ClassToString[q.Qclass], "name", q.Name,
			"proto", protoOf(w), "rcode", dns.RcodeToString[m.Rcode],
			"truncated", m.Truncated, "duration", time.Since(start))
	}
}

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
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = false
	reqOpt := r.IsEdns0()
	if reqOpt != nil {
		m.SetEdns0(advertisedUDPSize, reqOpt.Do())
		if reqOpt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers // the OPT carries its upper bits
			return m, nil
		}
	}
	if r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return m, nil
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m, nil
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if _, ok := dns.IsDomainName(name); !ok {
		m.Rcode = dns.RcodeFormatError
		return m, nil
	}
	b := h.match(name)
	if b == nil {
		m.Rcode = dns.RcodeRefused
		return m, nil
	}
	if b.Kubernetes == nil || (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) {
		m.Rcode = dns.RcodeRefused
		return m, b
	}
	k := b.Kubernetes
	zone := k.Zone.Match(name)
	if zone == "" {
		m.Rcode = dns.RcodeRefused // forwarding will take these
		return m, b
	}
	if !k.Zone.Synced() {
		// Never a false NXDOMAIN: until the first full view, we do not know.
		m.Rcode = dns.RcodeServerFailure
		return m, b
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused
		return m, b
	}
	if !k.authoritative(m, name, q.Name, zone, q.Qtype) {
		m.Rcode = dns.RcodeRefused // fell through, and nothing follows yet
		m.Authoritative = false
		m.Ns = nil
	}
	return m, b
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
		if qtype == dns.TypeANY {
			for _, s := range n.Sets {
				m.Answer = appendOwned(m.Answer, s.RRs, name, asked)
			}
			return true
		}
		set := n.Get(qtype)
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
