package resolver

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/maphash"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/plugin/kubernetes"
	"github.com/svcdisc/svcdisc/zones"
)

// The fast path answers the bulk of a cluster's queries (plain UDP queries
// for cluster names) from replies kept in wire form: per query only the ID
// and the RD and CD bits are written into a copy, and the address records
// shuffled when loadbalance asks. The general path builds each reply the
// first time and whenever the zone has changed what it says; everything
// unusual (upper case, EDNS options, truncation, CNAME chains, logging, ANY,
// zone transfers, forwarded names) goes to the general path every time.

const (
	flagEDNS = 1 << iota
	flagDO
)

// The replies kept are about 300 bytes each with the map's share
// (BenchmarkWireCacheMemory; 475 before they were held at their length and
// found by hash). A miss costs a general-path answer, which in a large
// cluster is a hundred times a kept reply (24 µs against 0.2 µs at 100,000
// Services): so the cache holds two replies for each Service of the
// cluster zone (its A and AAAA, or its name and a search-path NXDOMAIN), at
// least wireCacheMin (some 10 MB when full, enough up to 16,000 Services)
// and at most wireCacheMax (some 40 MB). It only fills with names that are
// asked. Under a memory limit (GOMEMLIMIT, which svcdisc sets from its
// cgroup's) the replies take at most a tenth of it: in a 170 MiB container
// 40 MB of kept replies would leave the zone of a large cluster no room,
// and a miss costs time, not memory.
const (
	wireCacheMin = 1 << 15
	wireCacheMax = 1 << 17
	// wireCacheFloor is the least the cache keeps under a small memory
	// limit: the names a few thousand Services' clients ask most.
	wireCacheFloor = 1 << 12
	// wireReplyBytes is what a kept reply costs, for the memory limit's
	// share (BenchmarkWireCacheMemory).
	wireReplyBytes = 300
)

// memoryLimit is the runtime's memory limit (math.MaxInt64 when none),
// read once: reading it takes the heap lock, and svcdisc sets it before it
// serves.
var memoryLimit = sync.OnceValue(func() int64 { return debug.SetMemoryLimit(-1) })

// wireLimit is how many replies the cache keeps for a cluster zone z.
func wireLimit(z *zones.Zone) int {
	return wireLimitFor(z.Services(), memoryLimit())
}

// wireLimitFor is how many replies the cache keeps for a cluster of
// services Services under a memory limit of limit bytes.
func wireLimitFor(services int, limit int64) int {
	n := min(max(2*services, wireCacheMin), wireCacheMax)
	if share := limit / 10 / wireReplyBytes; share < int64(n) {
		n = max(int(share), wireCacheFloor)
	}
	return n
}

const wireShards = 64

// wireEntry is a reply in wire form and what it was built from. The cache
// keeps up to 131,072 of them, so each is kept small: its reply is copied
// to its length (a packed message's buffer is about three times that), the
// query it answers is read from the reply's question instead of being kept
// as a map key, and a zone change that leaves the name's records alone
// moves gen in place instead of copying the entry.
type wireEntry struct {
	wireReply
	gen atomic.Uint64 // zone generation the entry is known current at
}

// wireReply is the immutable part of a wireEntry.
type wireReply struct {
	// full is the whole reply (when declined, a header and the question
	// only); small, when the whole one exceeds 512 bytes, is it cut down
	// for a client without EDNS (nil when the cut would depend on a
	// shuffle, so only the general path can make it).
	full  wireMsg
	small *wireMsg
	zone  *zones.Zone
	apex  string       // the cluster zone the name is in
	stamp any          // the name's zones.Stamp: its records while it holds
	deps  []plugin.Dep // the data of handlers that handed the query on
	// bufCap is bufsize's cap on an EDNS client's buffer, 0 for none.
	bufCap uint16
	// flags are the query's (EDNS, DO): with the question in full, what
	// the entry answers.
	flags uint8
	// declined says the general path must answer this query while the
	// entry holds (a log line to write, another handler's answer): it
	// spares running the chain to find that out again.
	declined bool
	meters   *meterPair
	// expansion counts each serving of the entry: a search-path expansion
	// (Block.Expansion), nil for other replies.
	expansion func()
}

// newWireEntry returns an entry for r, current at zone generation gen.
func newWireEntry(r wireReply, gen uint64) *wireEntry {
	e := &wireEntry{wireReply: r}
	e.gen.Store(gen)
	return e
}

// answers reports whether e is the reply to the query with key (see
// query.key): a cache slot is found by the key's hash only.
func (e *wireEntry) answers(key []byte) bool {
	n := len(key) - 1 // the name and qtype
	msg := e.full.msg
	return n >= 0 && e.flags == key[n] && len(msg) >= 12+n && bytes.Equal(msg[12:12+n], key[:n])
}

// depsHold reports whether the handlers that handed the query on still
// have the data they had.
func (e *wireReply) depsHold() bool {
	for _, d := range e.deps {
		if !d.Holds() {
			return false
		}
	}
	return true
}

// meterPair is the Meters of one kind of reply, by family: IPv4, IPv6.
// Entries share them.
type meterPair [2]Meter

// wireMsg is one packed reply and where to patch it.
// Offsets and sizes fit 16 bits: a DNS message is at most 65,535 bytes.
type wireMsg struct {
	msg []byte // ID 0, RD and CD clear
	// serialOff locates the SOA serial of a negative reply (0: none).
	serialOff uint16
	// Address records shuffled for loadbalance: count, first offset, size.
	addrN, addrOff, addrLen uint16
	shuffle                 bool
}

// wireShard maps a query key's hash to the entry: two keys of one hash
// share a slot, the last put keeps it, and get tells them apart.
type wireShard struct {
	mu sync.RWMutex
	m  map[uint64]*wireEntry
}

type wireCache struct {
	seed   maphash.Seed
	shards [wireShards]wireShard
}

func newWireCache() *wireCache {
	c := &wireCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*wireEntry)
	}
	return c
}

func (c *wireCache) hash(key []byte) uint64 { return maphash.Bytes(c.seed, key) }

func (c *wireCache) shard(h uint64) *wireShard { return &c.shards[h%wireShards] }

// get returns the entry for key, whose hash is h, or nil.
func (c *wireCache) get(key []byte, h uint64) *wireEntry {
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[h]
	s.mu.RUnlock()
	if e == nil || !e.answers(key) {
		return nil
	}
	return e
}

// put keeps e under the hash h of its key, evicting one reply at random
// when the cache holds limit replies (a replaced one makes no room).
func (c *wireCache) put(h uint64, e *wireEntry, limit int) {
	s := c.shard(h)
	s.mu.Lock()
	if _, ok := s.m[h]; !ok && len(s.m) >= limit/wireShards {
		for k := range s.m { // evict one at random: map order is random enough
			delete(s.m, k)
			break
		}
	}
	s.m[h] = e
	s.mu.Unlock()
}

// Meter records queries of one kind with its label lookups done once: a
// query of reqLen bytes from a client with a bufsize buffer, with the DO
// bit or not, answered with size bytes after d.
type Meter interface {
	Observe(reqLen, bufsize, size int, do bool, d time.Duration)
}

// Meters returns the Meter for queries answered by block b (zone is the
// block's zone of the name) with qtype and rcode, by the given part, over
// proto ("udp") from an IPv6 client or not. A metrics system provides it.
type Meters func(b *Block, zone string, qtype uint16, rcode int, by, proto string, v6 bool) Meter

// SetMeters installs m for the fast path; call before serving. Without it
// fast-path queries are not observed, so a handler with an Observer and no
// Meters keeps every query on the general path.
func (h *Handler) SetMeters(m Meters) { h.meters = m }

type meterKey struct {
	b     *Block
	zone  string
	qtype uint16
	rcode int
}

// meterPair returns the shared Meters of one kind of fast-path reply.
func (h *Handler) meterPair(b *Block, zone string, qtype uint16, rcode int) *meterPair {
	k := meterKey{b, zone, qtype, rcode}
	h.meterMu.Lock()
	defer h.meterMu.Unlock()
	if p := h.meterPairs[k]; p != nil {
		return p
	}
	if h.meterPairs == nil {
		h.meterPairs = make(map[meterKey]*meterPair)
	}
	p := &meterPair{
		h.meters(b, zone, qtype, rcode, kubernetes.Name, "udp", false),
		h.meters(b, zone, qtype, rcode, kubernetes.Name, "udp", true),
	}
	h.meterPairs[k] = p
	return p
}

// query is what the fast path reads from a request.
type query struct {
	key     []byte // lower-case wire name, qtype, flags
	hash    uint64 // the wire cache's hash of key
	nameEnd int    // offset after the question name
	qtype   uint16
	flags   uint8
	bufsize int // the client's UDP buffer
}

// parseQuery accepts a plain query: QR clear, opcode QUERY, one question
// in lower case with ordinary characters, class IN, nothing else but an
// optional OPT of version 0 without options. key must have room for 260
// bytes.
func parseQuery(req, key []byte) (q query, ok bool) {
	if len(req) < 17 {
		return q, false
	}
	if req[2]&0xF8 != 0 { // QR and opcode
		return q, false
	}
	if binary.BigEndian.Uint16(req[4:]) != 1 || binary.BigEndian.Uint16(req[6:]) != 0 ||
		binary.BigEndian.Uint16(req[8:]) != 0 {
		return q, false
	}
	ar := binary.BigEndian.Uint16(req[10:])
	if ar > 1 {
		return q, false
	}
	off := 12
	for {
		if off >= len(req) {
			return q, false
		}
		l := int(req[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(req) || off+1+l-12 > 254 {
			return q, false
		}
		for _, c := range req[off+1 : off+1+l] {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
				return q, false
			}
		}
		off += 1 + l
	}
	if off == 13 || off+4 > len(req) { // the root, or no type and class
		return q, false
	}
	q.nameEnd = off
	q.qtype = binary.BigEndian.Uint16(req[off:])
	if binary.BigEndian.Uint16(req[off+2:]) != dns.ClassINET {
		return q, false
	}
	off += 4
	q.bufsize = dns.MinMsgSize
	if ar == 1 {
		// An OPT: root name, type OPT, class = buffer size, extended RCODE
		// and version zero, flags, and no options.
		if off+11 != len(req) || req[off] != 0 || binary.BigEndian.Uint16(req[off+1:]) != dns.TypeOPT ||
			req[off+5] != 0 || req[off+6] != 0 || binary.BigEndian.Uint16(req[off+9:]) != 0 {
			return q, false
		}
		q.flags |= flagEDNS
		if req[off+7]&0x80 != 0 {
			q.flags |= flagDO
		}
		q.bufsize = max(int(binary.BigEndian.Uint16(req[off+3:])), dns.MinMsgSize)
	} else if off != len(req) {
		return q, false
	}
	n := copy(key, req[12:q.nameEnd+2])
	key[n] = q.flags
	q.key = key[:n+1]
	return q, true
}

// ServeFast answers a UDP query from a reply kept in wire form, writing it
// into out and returning its length. It returns
// false when the general path must answer instead; the reply it would have
// built is then kept for the next such query when it can be.
func (h *Handler) ServeFast(req, out []byte, v6 bool) (int, bool) {
	if h.wire == nil {
		return 0, false
	}
	var start time.Time
	if h.meters != nil {
		start = time.Now()
	}
	var keyBuf [260]byte
	q, ok := parseQuery(req, keyBuf[:])
	if !ok {
		return 0, false
	}
	q.hash = h.wire.hash(q.key)
	e := h.wire.get(q.key, q.hash)
	if e == nil || e.gen.Load() != e.zone.Generation() || !e.depsHold() {
		if e = h.refresh(e, req[12:q.nameEnd], q); e == nil {
			return 0, false
		}
	}
	limit := q.bufsize // 512 without EDNS
	if q.flags&flagEDNS != 0 {
		limit = udpLimit(q.bufsize, int(e.bufCap))
	}
	if e.declined {
		return 0, false
	}
	w := &e.full
	if len(w.msg) > limit {
		if w = e.small; w == nil || limit != dns.MinMsgSize {
			return 0, false // to be cut down to this size: the general path does that
		}
	}
	if len(w.msg) > len(out) {
		return 0, false
	}
	n := copy(out, w.msg)
	out[0], out[1] = req[0], req[1]
	out[2] |= req[2] & 0x01 // RD
	out[3] |= req[3] & 0x10 // CD
	if w.shuffle {
		off, n, size := int(w.addrOff), int(w.addrN), int(w.addrLen)
		shuffleWire(out[off:off+n*size], n, size)
	}
	if e.meters != nil {
		e.meters[btoi(v6)].Observe(len(req), q.bufsize, n, q.flags&flagDO != 0, time.Since(start))
	}
	if e.expansion != nil {
		e.expansion()
	}
	return n, true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// shuffleWire puts n records of size bytes each in random order.
func shuffleWire(b []byte, n, size int) {
	var tmp [64]byte
	for i := n - 1; i > 0; i-- {
		j := rand.IntN(i + 1)
		if i == j {
			continue
		}
		x, y := b[i*size:(i+1)*size], b[j*size:(j+1)*size]
		copy(tmp[:size], x)
		copy(x, y)
		copy(y, tmp[:size])
	}
}

// refresh returns a current entry for the query: old brought up to date
// when the zone changed elsewhere, or a new one built by the general path.
// It returns nil when the reply is not one the fast path can give.
func (h *Handler) refresh(old *wireEntry, wireName []byte, q query) *wireEntry {
	if old != nil && old.depsHold() {
		gen := old.zone.Generation()
		// A name made up per lookup (a pod name) has a nil stamp, as one
		// that does not exist: only a stable stamp tells they are the same.
		if st, stable := old.zone.Stamp(wireToName(wireName)); stable && st == old.stamp {
			// The name's records did not change: the reply holds as it is,
			// but for a negative reply's SOA serial.
			if old.declined || old.full.serialOff == 0 {
				old.gen.Store(gen)
				return old
			}
			soa, ok := old.zone.SOA(old.apex).(*dns.SOA)
			if !ok {
				return nil
			}
			r := old.wireReply
			r.full = *r.full.withSerial(soa.Serial)
			if r.small != nil {
				r.small = r.small.withSerial(soa.Serial)
			}
			e := newWireEntry(r, gen)
			h.wire.put(q.hash, e, wireLimit(e.zone))
			return e
		}
	}
	e := h.buildWire(wireName, q)
	if e != nil {
		h.wire.put(q.hash, e, wireLimit(e.zone))
	}
	return e
}

// buildWire builds the reply to a plain query with the general path and
// keeps it if it depends on nothing but the one name's node and the SOA.
func (h *Handler) buildWire(wireName []byte, q query) *wireEntry {
	switch q.qtype {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeSOA, dns.TypeNS, dns.TypeOPT, dns.TypeNone:
		return nil
	}
	name := wireToName(wireName)
	bz := h.match(name)
	if bz == nil || bz.block.Zone == nil || (h.observe != nil && h.meters == nil) {
		return nil
	}
	b, z := bz.block, bz.block.Zone
	apex := z.Match(name)
	if apex == "" || !z.Synced() {
		return nil
	}
	gen := z.Generation()
	stamp, stable := z.Stamp(name)
	if !stable {
		return nil // made up per lookup (pod names): nothing to compare
	}
	if node := z.Lookup(name); node != nil && node.Get(dns.TypeCNAME) != nil && q.qtype != dns.TypeCNAME {
		return nil // the reply depends on the target's records too
	}
	req := new(dns.Msg)
	req.SetQuestion(name, q.qtype)
	req.RecursionDesired = false
	if q.flags&flagEDNS != 0 {
		req.SetEdns0(plugin.AdvertisedUDPSize, q.flags&flagDO != 0)
	}
	answer := func() (*dns.Msg, *plugin.State) {
		st := plugin.NewState(req, bz.zone, nil, "udp")
		return b.Chain.ServeDNS(context.Background(), st), st
	}
	m, st := answer()
	if st.By != kubernetes.Name || st.Authority != z || st.NoFast || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		question := append(make([]byte, 12, 12+len(q.key)), q.key[:len(q.key)-1]...)
		return newWireEntry(wireReply{full: wireMsg{msg: question}, zone: z, apex: apex, stamp: stamp, deps: st.Deps,
			flags: q.flags, declined: true}, gen)
	}
	m.Compress = true
	msg, err := m.Pack()
	if err != nil {
		return nil
	}
	r := wireReply{zone: z, apex: apex, stamp: stamp, bufCap: uint16(min(st.BufSize, dns.MaxMsgSize)), deps: st.Deps,
		flags: q.flags}
	full := locate(msg, m, st.Shuffle)
	if full == nil {
		return nil
	}
	r.full = *full
	if len(msg) > dns.MinMsgSize {
		// The reply for a client without EDNS, cut down as the general
		// path cuts it: additional records first, then TC.
		small, _ := answer()
		if smsg, err := pack(small, dns.MinMsgSize); err == nil {
			r.small = locate(smsg, small, st.Shuffle)
			if r.small != nil && r.small.shuffle && small.Truncated {
				r.small = nil // which records survive the cut is the shuffle's choice
			}
		}
	}
	if h.meters != nil {
		r.meters = h.meterPair(b, b.ZoneOf(name), q.qtype, m.Rcode)
	}
	if m.Rcode == dns.RcodeNameError && !kubernetes.Reverse(apex) {
		r.expansion = b.Expansion
	}
	return newWireEntry(r, gen)
}

// locate finds, in the packed reply msg of m, the SOA serial of a negative
// answer and the run of equal-sized address records loadbalance shuffles.
// It returns nil if the reply has a shape it does not expect. The result
// holds a copy of msg of its length.
func locate(msg []byte, m *dns.Msg, loadBalance bool) *wireMsg {
	if len(msg) > dns.MaxMsgSize {
		return nil
	}
	w := &wireMsg{msg: bytes.Clone(msg)}
	off := skipName(msg, 12)
	if off < 0 {
		return nil
	}
	off += 4
	sizes := make([]int, 0, len(m.Answer))
	allAddr := len(m.Answer) > 1
	w.addrOff = uint16(off)
	for _, rr := range m.Answer {
		start := off
		if off = skipRR(msg, off); off < 0 {
			return nil
		}
		if t := rr.Header().Rrtype; t != dns.TypeA && t != dns.TypeAAAA {
			allAddr = false
		}
		sizes = append(sizes, off-start)
	}
	if allAddr {
		for _, s := range sizes {
			if s != sizes[0] || s > 64 {
				allAddr = false
			}
		}
	}
	if allAddr {
		w.addrN, w.addrLen = uint16(len(sizes)), uint16(sizes[0])
		w.shuffle = loadBalance
	}
	if len(m.Ns) == 1 {
		if _, ok := m.Ns[0].(*dns.SOA); ok {
			p := skipName(msg, off) // owner
			if p < 0 || p+10 > len(msg) {
				return nil
			}
			p += 10                          // type, class, TTL, RDLENGTH
			if p = skipName(msg, p); p < 0 { // MNAME
				return nil
			}
			if p = skipName(msg, p); p < 0 || p+4 > len(msg) { // RNAME
				return nil
			}
			w.serialOff = uint16(p)
		}
	}
	return w
}

// withSerial returns a copy of w with the SOA serial replaced.
func (w *wireMsg) withSerial(serial uint32) *wireMsg {
	c := *w
	c.msg = append([]byte(nil), w.msg...)
	binary.BigEndian.PutUint32(c.msg[c.serialOff:], serial)
	return &c
}

// skipName returns the offset after the (possibly compressed) name at off,
// or -1.
func skipName(msg []byte, off int) int {
	for off < len(msg) {
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xC0 == 0xC0:
			if off+2 > len(msg) {
				return -1
			}
			return off + 2
		case l > 63:
			return -1
		}
		off += 1 + l
	}
	return -1
}

// skipRR returns the offset after the resource record at off, or -1.
func skipRR(msg []byte, off int) int {
	if off = skipName(msg, off); off < 0 || off+10 > len(msg) {
		return -1
	}
	end := off + 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	if end > len(msg) {
		return -1
	}
	return end
}

// wireToName turns a lower-case wire name of ordinary characters into its
// presentation form.
func wireToName(w []byte) string {
	buf := make([]byte, 0, len(w))
	for off := 0; off < len(w) && w[off] != 0; {
		l := int(w[off])
		buf = append(buf, w[off+1:off+1+l]...)
		buf = append(buf, '.')
		off += 1 + l
	}
	if len(buf) == 0 {
		return "."
	}
	return string(buf)
}
