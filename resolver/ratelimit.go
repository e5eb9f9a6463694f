package resolver

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
)

// RateLimit configures response rate limiting over UDP, per client
// prefix. A UDP source address can be forged, so a flood of queries could
// turn the server into an amplifier aimed at the forged address; limiting
// answers per prefix caps what any one victim receives. TCP is never
// limited: a completed handshake proves the address.
type RateLimit struct {
	// Rate is the responses per second a prefix gets; it must be positive.
	Rate int
	// Burst is how many responses a prefix that has been quiet may get at
	// once; Rate when 0.
	Burst int
	// IPv4Prefix and IPv6Prefix are the lengths clients are grouped by;
	// 24 and 56 when 0, the sizes one site usually holds.
	IPv4Prefix, IPv6Prefix int
	// Slip is how often a limited query still gets a reply: an empty one
	// with TC set, which makes a real client retry over TCP while giving a
	// forged victim nothing larger than the query. Every Slip-th limited
	// query of a prefix slips; 0 drops them all.
	Slip int
	// Exempt lists clients that are never limited.
	Exempt []netip.Prefix
	// MaxPrefixes bounds the prefixes tracked at once, DefaultMaxPrefixes
	// when 0, so that a flood from forged sources costs bounded memory. The
	// table holds a power of two of sets of 8, so the bound is rounded down
	// to such a size (and up to 8).
	MaxPrefixes int
	// Now is the clock, time.Now when nil; tests set it.
	Now func() time.Time
	// OnLimit, when set, is called for each limited query, with whether it
	// slipped (got a TC reply) or was dropped; it runs on a reading
	// goroutine and must not block.
	OnLimit func(slipped bool)
}

// DefaultMaxPrefixes is the number of client prefixes a RateLimiter tracks
// by default: 64k entries of 32 bytes, 2 MiB.
const DefaultMaxPrefixes = 1 << 16

// maxRate bounds Rate and Burst, which keeps the arithmetic in
// nanoseconds within int64.
const maxRate = 1_000_000

// rlWays is how many entries share one set of the table: a prefix lives in
// one set, found by a hash, so a lookup reads at most this many entries.
const rlWays = 8

// RateLimiter is the state of a RateLimit: a token bucket per client
// prefix. The buckets live in a fixed table allocated up front, so neither
// a query nor a flood of new prefixes allocates; when a prefix's set is
// full, the entry whose bucket is fullest (the one that has gone longest
// without an answer, an idle one first) makes room.
type RateLimiter struct {
	// Buckets are kept as GCRA theoretical arrival times: a prefix may
	// have an answer while tat-now <= tolerance, and each answer moves tat
	// on by interval. A tat at or before now is a full bucket.
	interval, tolerance int64
	v4mask              uint32
	v6hi, v6lo          uint64
	slip                uint32
	exempt              []netip.Prefix
	now                 func() time.Time
	epoch               time.Time
	onLimit             func(bool)
	seed                uint64
	shardMask, setMask  uint64
	setShift            uint
	shards              []rlShard
}

type rlShard struct {
	mu      sync.Mutex
	entries []rlEntry // sets of rlWays entries
	_       [32]byte  // keep shards' locks on separate cache lines
}

// rlEntry is one prefix: its masked address, IPv4 in its IPv4-mapped
// form so the families never collide.
type rlEntry struct {
	hi, lo  uint64
	tat     int64 // 0: a free entry
	limited uint32
}

// WithRateLimit returns h with its UDP queries limited by l: a Server
// serving it drops or slips what l refuses before either path answers.
// The limiter travels with the handler, so a reload that swaps handlers
// swaps (or removes) the limiter with them. TCP queries are not limited.
func WithRateLimit(h dns.Handler, l *RateLimiter) dns.Handler {
	fh, _ := h.(FastHandler)
	return &rateLimited{Handler: h, fast: fh, limiter: l}
}

type rateLimited struct {
	dns.Handler
	fast    FastHandler
	limiter *RateLimiter
}

// ServeFast hands on to the handler's fast path, if it has one.
func (r *rateLimited) ServeFast(req, out []byte, v6 bool) (int, bool) {
	if r.fast == nil {
		return 0, false
	}
	return r.fast.ServeFast(req, out, v6)
}

// limiterOf returns the limiter h carries, nil for none.
func limiterOf(h dns.Handler) *RateLimiter {
	if r, ok := h.(*rateLimited); ok {
		return r.limiter
	}
	return nil
}

// verdict is what becomes of one query.
type verdict uint8

const (
	admitted verdict = iota
	dropped
	slipped
)

// NewRateLimiter checks o and returns its limiter.
func NewRateLimiter(o RateLimit) (*RateLimiter, error) {
	if o.Burst == 0 {
		o.Burst = o.Rate
	}
	if o.IPv4Prefix == 0 {
		o.IPv4Prefix = 24
	}
	if o.IPv6Prefix == 0 {
		o.IPv6Prefix = 56
	}
	if o.MaxPrefixes == 0 {
		o.MaxPrefixes = DefaultMaxPrefixes
	}
	switch {
	case o.Rate < 1 || o.Rate > maxRate:
		return nil, fmt.Errorf("rate limit: rate %d is not between 1 and %d", o.Rate, maxRate)
	case o.Burst < 1 || o.Burst > maxRate:
		return nil, fmt.Errorf("rate limit: burst %d is not between 1 and %d", o.Burst, maxRate)
	case o.IPv4Prefix < 1 || o.IPv4Prefix > 32:
		return nil, fmt.Errorf("rate limit: IPv4 prefix length %d is not between 1 and 32", o.IPv4Prefix)
	case o.IPv6Prefix < 1 || o.IPv6Prefix > 128:
		return nil, fmt.Errorf("rate limit: IPv6 prefix length %d is not between 1 and 128", o.IPv6Prefix)
	case o.Slip < 0:
		return nil, fmt.Errorf("rate limit: slip %d is negative", o.Slip)
	case o.MaxPrefixes < 1 || o.MaxPrefixes > 1<<24:
		return nil, fmt.Errorf("rate limit: %d prefixes is not between 1 and %d", o.MaxPrefixes, 1<<24)
	}
	l := &RateLimiter{
		interval: int64(time.Second) / int64(o.Rate),
		slip:     uint32(o.Slip),
		now:      o.Now,
		onLimit:  o.OnLimit,
		seed:     rand.Uint64(),
		v4mask:   ^uint32(0) << (32 - o.IPv4Prefix),
	}
	l.tolerance = int64(o.Burst-1) * l.interval
	for i := range o.Exempt {
		l.exempt = append(l.exempt, o.Exempt[i].Masked())
	}
	if o.IPv6Prefix >= 64 {
		l.v6hi, l.v6lo = ^uint64(0), ^uint64(0)<<(128-o.IPv6Prefix)
		if o.IPv6Prefix == 64 {
			l.v6lo = 0
		}
	} else {
		l.v6hi = ^uint64(0) << (64 - o.IPv6Prefix)
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.epoch = l.now()
	// Whole sets, a power of two of them (rounding down, so that the bound
	// holds), spread over up to 64 shards.
	sets := 1
	if n := o.MaxPrefixes / rlWays; n > 1 {
		sets = 1 << (bits.Len(uint(n)) - 1)
	}
	shards := min(sets, 64)
	perShard := sets / shards
	l.shards = make([]rlShard, shards)
	for i := range l.shards {
		l.shards[i].entries = make([]rlEntry, perShard*rlWays)
	}
	l.shardMask = uint64(shards - 1)
	l.setShift = uint(bits.Len(uint(shards - 1)))
	l.setMask = uint64(perShard - 1)
	return l, nil
}

// capacity is the number of prefixes the table holds.
func (l *RateLimiter) capacity() int { return len(l.shards) * len(l.shards[0].entries) }

// key masks ip to its prefix. ok is false for what is no IP address.
func (l *RateLimiter) key(ip net.IP) (hi, lo uint64, ok bool) {
	if ip4 := ip.To4(); ip4 != nil {
		return 0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(ip4)&l.v4mask), true
	}
	if len(ip) != net.IPv6len {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(ip[:8]) & l.v6hi, binary.BigEndian.Uint64(ip[8:]) & l.v6lo, true
}

// hash mixes a key with the limiter's random seed (splitmix64's
// finaliser): sources an attacker picks cannot be aimed at one set.
func (l *RateLimiter) hash(hi, lo uint64) uint64 {
	x := hi ^ bits.RotateLeft64(lo, 31) ^ l.seed
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (l *RateLimiter) isExempt(ip net.IP) bool {
	if len(l.exempt) == 0 {
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range l.exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// count reports a limited query to OnLimit.
func (l *RateLimiter) count(v verdict) {
	if l.onLimit != nil {
		l.onLimit(v == slipped)
	}
}

// decide says what becomes of a query from ip: admitted, dropped, or
// slipped (answered with an empty TC reply).
func (l *RateLimiter) decide(ip net.IP) verdict {
	if l.isExempt(ip) {
		return admitted
	}
	hi, lo, ok := l.key(ip)
	if !ok {
		return admitted
	}
	now := l.now().Sub(l.epoch).Nanoseconds() + 1 // 0 marks a free entry
	h := l.hash(hi, lo)
	sh := &l.shards[h&l.shardMask]
	set := int((h>>l.setShift)&l.setMask) * rlWays
	sh.mu.Lock()
	ways := sh.entries[set : set+rlWays]
	var e *rlEntry
	victim := 0
	for i := range ways {
		if ways[i].tat != 0 && ways[i].hi == hi && ways[i].lo == lo {
			e = &ways[i]
			break
		}
		if ways[i].tat < ways[victim].tat {
			victim = i
		}
	}
	if e == nil {
		e = &ways[victim]
		*e = rlEntry{hi: hi, lo: lo, tat: now}
	}
	tat := max(e.tat, now)
	if tat-now <= l.tolerance {
		e.tat = tat + l.interval
		sh.mu.Unlock()
		return admitted
	}
	e.limited++
	n := e.limited
	sh.mu.Unlock()
	if l.slip > 0 && n%l.slip == 0 {
		return slipped
	}
	return dropped
}

// slipReply writes into out the reply a slipped query gets: the query's
// header and question with QR and TC set, nothing else, so it is never
// larger than the query. It returns 0 for what deserves no reply (a
// response, another opcode than QUERY, a malformed question) or does not
// fit out.
func slipReply(req, out []byte) int {
	if len(req) < 12 || req[2]&0x80 != 0 || req[2]&0x78 != 0 {
		return 0
	}
	if binary.BigEndian.Uint16(req[4:]) != 1 {
		return 0
	}
	off := 12
	for {
		if off >= len(req) || off-12 > 255 {
			return 0
		}
		l := int(req[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 { // a compression pointer has no place in a question
			return 0
		}
		off += 1 + l
	}
	n := off + 4
	if n > len(req) || n > len(out) {
		return 0
	}
	copy(out, req[:n])
	out[2] = 0x80 | req[2]&0x01 | 0x02 // QR, RD as asked, TC
	out[3] = req[3] & 0x10             // CD as asked; RA clear, NOERROR
	clear(out[6:12])                   // no answer, authority or additional records
	// A query with an OPT of version 0 (the only additional record, as
	// clients send it) gets one back (RFC 6891 7): our buffer size and the
	// DO bit as asked, no options. It is no larger than the query's.
	if binary.BigEndian.Uint16(req[6:]) == 0 && binary.BigEndian.Uint16(req[8:]) == 0 &&
		binary.BigEndian.Uint16(req[10:]) == 1 && n+11 <= len(req) && n+11 <= len(out) &&
		req[n] == 0 && binary.BigEndian.Uint16(req[n+1:]) == dns.TypeOPT && req[n+6] == 0 {
		opt := out[n : n+11]
		opt[0] = 0
		binary.BigEndian.PutUint16(opt[1:], dns.TypeOPT)
		binary.BigEndian.PutUint16(opt[3:], plugin.AdvertisedUDPSize)
		opt[5], opt[6], opt[7], opt[8] = 0, 0, req[n+7]&0x80, 0 // extended RCODE, version, DO
		binary.BigEndian.PutUint16(opt[9:], 0)
		out[11] = 1
		n += 11
	}
	return n
}
