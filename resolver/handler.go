package resolver

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/zones"
)

// Block is one server block: the zones it serves and the chain of
// handlers that answers their names.
type Block struct {
	// Zones are lower case and fully qualified; "." is every name.
	Zones []string
	Chain plugin.Handler
	// Zone is the cluster zone the chain's kubernetes handler answers
	// from, nil when it has none: the fast path keeps that handler's
	// replies while what they were made from holds.
	Zone *zones.Zone
	// Expansion, when set, counts a search-path expansion: an NXDOMAIN of
	// the kubernetes handler for a name below a (forward) cluster zone.
	// The handler counts those it answers; the fast path those it serves.
	Expansion func()
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
		if plugin.InZone(name, z) && zoneLen(z) > zoneLen(best) {
			best = z
		}
	}
	return best
}

func (h *Handler) match(name string) *blockZone {
	for i := range h.blocks {
		if plugin.InZone(name, h.blocks[i].zone) {
			return &h.blocks[i]
		}
	}
	return nil
}

// ServeDNS implements dns.Handler.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	start := time.Now()
	m, b, st := h.resolve(context.Background(), r, w.RemoteAddr(), protoOf(w))
	by := ""
	size := dns.MaxMsgSize
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size = dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			bufCap := 0
			if st != nil {
				bufCap = st.BufSize
			}
			size = udpLimit(int(opt.UDPSize()), bufCap)
		}
	}
	if st != nil {
		by = st.By
	}
	out, err := pack(m, size)
	if err == nil {
		_, err = w.Write(out)
	}
	if h.observe != nil {
		h.observe(w, r, m, b, by, len(out), time.Since(start))
	}
	if err != nil {
		h.log.Debug("write response", "remote", w.RemoteAddr().String(), "err", err)
	}
}

// udpLimit is the largest UDP reply to an EDNS client offering a buffer of
// offered bytes: never more than bufsize's cap (bufCap, 0 when none), or
// without one than the buffer we advertise (1232 bytes, which is not
// fragmented on any usual path), whatever larger buffer the client
// offers; and never less than 512.
func udpLimit(offered, bufCap int) int {
	if bufCap <= 0 {
		bufCap = plugin.AdvertisedUDPSize
	}
	return max(min(offered, bufCap), dns.MinMsgSize)
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
	m, b, _ := h.resolve(context.Background(), r, nil, "udp")
	return m, b
}

// resolve builds the response to r and says which block answered it, and
// what the chain learned of the query on the way (nil when r went down no
// chain).
func (h *Handler) resolve(ctx context.Context, r *dns.Msg, remote net.Addr, proto string) (*dns.Msg, *Block, *plugin.State) {
	st, m, b := h.state(r, remote, proto)
	if st == nil {
		return m, b, nil
	}
	return b.Chain.ServeDNS(ctx, st), b, st
}

// state checks the header and question of r and finds its block. It returns
// the query's state, or the error reply when r cannot go down a chain.
func (h *Handler) state(r *dns.Msg, remote net.Addr, proto string) (*plugin.State, *dns.Msg, *Block) {
	reqOpt := r.IsEdns0()
	fail := func(rcode int) (*plugin.State, *dns.Msg, *Block) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = false
		if reqOpt != nil {
			m.SetEdns0(plugin.AdvertisedUDPSize, reqOpt.Do())
		}
		m.Rcode = rcode // BADVERS's upper bits go in the OPT
		return nil, m, nil
	}
	switch {
	case countOPT(r) > 1: // RFC 6891 6.1.1
		return fail(dns.RcodeFormatError)
	case reqOpt != nil && reqOpt.Version() != 0:
		return fail(dns.RcodeBadVers)
	case r.Opcode != dns.OpcodeQuery:
		return fail(dns.RcodeNotImplemented)
	case len(r.Question) != 1 || len(r.Answer) > 1 || len(r.Ns) > 1 || len(r.Extra) > 2:
		// The sections miekg/dns's server accepts of a query.
		return fail(dns.RcodeFormatError)
	}
	name := strings.ToLower(r.Question[0].Name)
	if _, ok := dns.IsDomainName(name); !ok {
		return fail(dns.RcodeFormatError)
	}
	bz := h.match(name)
	if bz == nil {
		return fail(dns.RcodeRefused)
	}
	return plugin.NewState(r, bz.zone, remote, proto), nil, bz.block
}

// countOPT counts the OPT records of r's additional section.
func countOPT(r *dns.Msg) int {
	n := 0
	for _, rr := range r.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}

var _ dns.Handler = (*Handler)(nil)
