package cache

import (
	"math"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// entry is one cached answer. Everything but the hit bookkeeping is set by
// newEntry and never changed, so entries are read without locking; the
// records are never handed out, only copies of them.
type entry struct {
	rcode                            int
	authoritative, authenticated, ra bool
	answer, ns, extra                []dns.RR // TTLs capped at ttl
	ttl                              uint32   // seconds the entry lives
	stored                           time.Time
	failure                          bool // a kept SERVFAIL or NOTIMP

	mu         sync.Mutex
	lastHit    time.Time // last Get that found the entry fresh
	hits       int       // hits with no gap longer than the prefetch window
	prefetchAt time.Time // when the Prefetch flag was last handed out
}

// newEntry copies the cacheable parts of resp into a new entry living ttl
// seconds from now.
func newEntry(resp *dns.Msg, ttl uint32, now time.Time) *entry {
	return &entry{
		rcode:         resp.Rcode,
		authoritative: resp.Authoritative,
		authenticated: resp.AuthenticatedData,
		ra:            resp.RecursionAvailable,
		answer:        storeRRs(resp.Answer, ttl),
		ns:            storeRRs(resp.Ns, ttl),
		extra:         storeRRs(resp.Extra, ttl),
		ttl:           ttl,
		stored:        now,
	}
}

// storeRRs returns copies of rrs without hop-by-hop records, each TTL capped
// at ttl.
func storeRRs(rrs []dns.RR, ttl uint32) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if hopByHop(rr) {
			continue
		}
		cp := dns.Copy(rr)
		cp.Header().Ttl = min(rrTTL(rr), ttl)
		out = append(out, cp)
	}
	return out
}

// lifetime returns how long the entry lives.
func (e *entry) lifetime() time.Duration {
	return time.Duration(e.ttl) * time.Second
}

// elapsed returns the time spent in the cache, never negative (a clock that
// steps back does not make an entry younger than stored).
func (e *entry) elapsed(now time.Time) time.Duration {
	return max(now.Sub(e.stored), 0)
}

// fresh reports whether the entry has not expired at now.
func (e *entry) fresh(now time.Time) bool {
	return e.elapsed(now) < e.lifetime()
}

// remaining returns the whole seconds left before the entry expires, the TTL
// a record with the entry's full TTL is served with.
func (e *entry) remaining(now time.Time) uint32 {
	spent := uint64(e.elapsed(now) / time.Second)
	if spent >= uint64(e.ttl) {
		return 0
	}
	return e.ttl - uint32(spent)
}

// threshold returns the remaining TTL at or under which the entry is due for
// prefetch: PrefetchPercent of its TTL, rounded up so that it is at least one
// second.
func (c *Cache) threshold(e *entry) uint32 {
	return uint32(math.Ceil(float64(c.percent) * float64(e.ttl) / 100))
}

// recordHit counts a fresh hit at now and reports whether the caller gets
// the Prefetch flag: the entry is due and the flag was not handed out in the
// last prefetchRetry.
func (e *entry) recordHit(c *Cache, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hits == 0 || now.Sub(e.lastHit) > c.window {
		e.hits = 1
	} else {
		e.hits++
	}
	e.lastHit = now
	if e.hits < c.prefetch || e.remaining(now) > c.threshold(e) {
		return false
	}
	if !e.prefetchAt.IsZero() && now.Sub(e.prefetchAt) < prefetchRetry {
		return false
	}
	e.prefetchAt = now
	return true
}

// claimRefresh reports whether the caller is the one to refresh the stale
// entry at now: no other caller was told so within retry.
func (e *entry) claimRefresh(now time.Time, retry time.Duration) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.prefetchAt.IsZero() && now.Sub(e.prefetchAt) < retry {
		return false
	}
	e.prefetchAt = now
	return true
}

// inherit carries the hit count of old, the entry e replaces, over to e, so
// that a refreshed popular entry stays popular (CoreDNS does the same after a
// prefetch). Hits older than window are not carried.
func (e *entry) inherit(old *entry, now time.Time, window time.Duration) {
	old.mu.Lock()
	hits, last := old.hits, old.lastHit
	old.mu.Unlock()
	if hits == 0 || now.Sub(last) > window {
		return
	}
	e.hits, e.lastHit = hits, now
}

// toMsg builds the reply to req from e, each record's stored TTL mapped
// by ttl.
func (e *entry) toMsg(req *dns.Msg, do bool, ttl func(uint32) uint32) *dns.Msg {
	m := new(dns.Msg)
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled
	m.Authoritative = e.authoritative
	m.RecursionAvailable = e.ra
	m.AuthenticatedData = e.authenticated && do
	m.Rcode = e.rcode
	m.Question = []dns.Question{req.Question[0]}
	m.Answer = serveRRs(e.answer, ttl)
	m.Ns = serveRRs(e.ns, ttl)
	m.Extra = serveRRs(e.extra, ttl)
	return m
}

// serveRRs returns copies of rrs with their TTLs mapped by ttl.
func serveRRs(rrs []dns.RR, ttl func(uint32) uint32) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		cp := dns.Copy(rr)
		h := cp.Header()
		h.Ttl = ttl(h.Ttl)
		out[i] = cp
	}
	return out
}
