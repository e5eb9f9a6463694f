package cache

import (
	"math"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
)

// Defaults applied by New to zero fields of Options; they are CoreDNS's.
const (
	defaultCap             = 9984
	defaultSuccessTTL      = 3600 * time.Second
	defaultDenialTTL       = 1800 * time.Second
	defaultMinTTL          = 5 * time.Second
	defaultPrefetchWindow  = time.Minute
	defaultPrefetchPercent = 10
	defaultServFailTTL     = 5 * time.Second
	// maxServFailTTL is the longest a SERVFAIL may be kept: RFC 2308
	// section 7.1 forbids more than five minutes.
	maxServFailTTL = 5 * time.Minute
)

// StaleAnswerTTL is the TTL GetStale puts on every record of an answer built
// from an expired entry, the value RFC 8767 section 4 recommends.
const StaleAnswerTTL = 30 * time.Second

// prefetchRetry is how long after the Prefetch flag was handed out for an
// entry Get may hand it out again for the same entry, in case the caller's
// prefetch failed and Set was never called with a fresh answer.
const prefetchRetry = 5 * time.Second

// maxTTL is the largest TTL RFC 2181 section 8 allows; larger values are
// treated as 0.
const maxTTL = math.MaxInt32

// Options configures a Cache. Zero fields take the documented defaults.
type Options struct {
	// SuccessCap and DenialCap are the maximum numbers of entries in the
	// success and denial caches; zero or negative means 9984.
	SuccessCap, DenialCap int
	// SuccessTTL and DenialTTL cap how long an entry is kept, whatever the
	// upstream's TTL; zero or negative means 3600 s and 1800 s.
	SuccessTTL, DenialTTL time.Duration
	// MinSuccessTTL and MinDenialTTL floor how long an entry is kept; zero
	// means 5 s, a negative value means no floor.
	MinSuccessTTL, MinDenialTTL time.Duration
	// Prefetch enables prefetching when positive: an entry that has been hit
	// this many times with no gap of PrefetchWindow or more between hits is
	// due for prefetch once its remaining TTL drops to PrefetchPercent of its
	// original TTL.
	Prefetch int
	// PrefetchWindow is the longest gap between hits that still counts them
	// as consecutive; zero or negative means 1 minute.
	PrefetchWindow time.Duration
	// PrefetchPercent is the share of the original TTL, in percent, under
	// which a popular entry is due for prefetch; zero or negative means 10,
	// values above 100 mean 100.
	PrefetchPercent int
	// ServeStale, when positive, is how long past its expiry an entry may
	// still be returned by GetStale.
	ServeStale time.Duration
	// StaleTTL is the TTL of every record of a stale answer; zero means
	// StaleAnswerTTL (30 s), a negative value means 0.
	StaleTTL time.Duration
	// StaleRecheck is how long GetStale waits, after handing out the
	// Prefetch flag for a stale entry, before it hands it out again for the
	// same entry (the refresh failed, or is still under way); it is never
	// less than 5 s.
	StaleRecheck time.Duration
	// ServFailTTL is how long a SERVFAIL or NOTIMP response is kept (in the
	// denial cache, whatever its records); zero means 5 s, a negative value
	// means such responses are not kept, and values above 5 minutes mean 5
	// minutes (RFC 2308 section 7.1).
	ServFailTTL time.Duration
	// NoSuccess and NoDenial list zones (lower case, fully qualified, "."
	// for every name) whose names' answers are not kept in the success or
	// the denial cache; SERVFAIL counts as a denial.
	NoSuccess, NoDenial []string
	// KeepTTL serves fresh entries with the TTLs they were stored with
	// instead of counting them down.
	KeepTTL bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Hit says what kind of answer Get found.
type Hit int

const (
	// Miss means the cache had no usable answer.
	Miss Hit = 0
	// Fresh means the answer came from an entry that has not expired.
	Fresh Hit = 1
	// Stale means the answer came from an expired entry within the
	// serve-stale window. Get never returns it; it exists for callers that
	// record what they served through GetStale.
	Stale Hit = 2
	// Prefetch is a flag added to Fresh when the entry is due for prefetch
	// and this caller is the one that should refresh it: the flag is handed
	// to one Get per entry (again only after 5 s, should no fresh answer have
	// been Set meanwhile), so concurrent hits start at most one prefetch.
	Prefetch Hit = 4
)

// String returns the hit kind as a lower-case word, with "+prefetch" appended
// when the Prefetch flag is set.
func (h Hit) String() string {
	var s string
	switch h &^ Prefetch {
	case Miss:
		s = "miss"
	case Fresh:
		s = "fresh"
	case Stale:
		s = "stale"
	default:
		s = "unknown"
	}
	if h&Prefetch != 0 {
		s += "+prefetch"
	}
	return s
}

// Stats holds the cache's counters since New, for metrics.
type Stats struct {
	// Hits counts answers served from unexpired entries; DenialHits is
	// the part of them served from the denial cache.
	Hits, DenialHits uint64
	// Misses counts Get calls that found no unexpired entry.
	Misses uint64
	// Prefetches counts the Prefetch flags Get handed out.
	Prefetches uint64
	// StaleServed counts answers GetStale built from expired entries.
	StaleServed uint64
	// SuccessEvictions and DenialEvictions count entries pushed out of each
	// cache to make room for a new one.
	SuccessEvictions, DenialEvictions uint64
}

// Cache is a DNS response cache with a success and a denial part. It is safe
// for concurrent use.
type Cache struct {
	success *lru.Cache[key, *entry]
	denial  *lru.Cache[key, *entry]

	successMax, successMin uint32 // seconds
	denialMax, denialMin   uint32 // seconds

	failTTL uint32 // seconds; 0 = SERVFAIL is not kept

	prefetch     int
	window       time.Duration
	percent      int
	serveStale   time.Duration
	staleTTL     uint32
	staleRecheck time.Duration
	noSuccess    []string
	noDenial     []string
	keepTTL      bool
	now          func() time.Time

	hits, denialHits, misses, prefetches, staleServed atomic.Uint64
	successEvictions, denialEvictions                 atomic.Uint64
}

// key identifies an entry. name is lower-cased.
type key struct {
	name          string
	qtype, qclass uint16
	do, cd        bool
}

// New returns an empty cache configured by o.
func New(o Options) *Cache {
	c := &Cache{
		successMax: seconds(orDefault(o.SuccessTTL, defaultSuccessTTL)),
		denialMax:  seconds(orDefault(o.DenialTTL, defaultDenialTTL)),
		successMin: seconds(floorOption(o.MinSuccessTTL)),
		denialMin:  seconds(floorOption(o.MinDenialTTL)),
		prefetch:   max(o.Prefetch, 0),
		window:     orDefault(o.PrefetchWindow, defaultPrefetchWindow),
		percent:    o.PrefetchPercent,
		serveStale: max(o.ServeStale, 0),
		staleTTL:   uint32(StaleAnswerTTL / time.Second),
		noSuccess:  o.NoSuccess,
		noDenial:   o.NoDenial,
		keepTTL:    o.KeepTTL,
		now:        o.Now,
	}
	switch {
	case o.StaleTTL < 0:
		c.staleTTL = 0
	case o.StaleTTL > 0:
		c.staleTTL = seconds(o.StaleTTL)
	}
	c.staleRecheck = max(o.StaleRecheck, prefetchRetry)
	switch {
	case o.ServFailTTL == 0:
		c.failTTL = seconds(defaultServFailTTL)
	case o.ServFailTTL > 0:
		c.failTTL = seconds(min(o.ServFailTTL, maxServFailTTL))
	}
	if c.percent <= 0 {
		c.percent = defaultPrefetchPercent
	}
	c.percent = min(c.percent, 100)
	if c.now == nil {
		c.now = time.Now
	}
	c.success = newLRU(o.SuccessCap)
	c.denial = newLRU(o.DenialCap)
	return c
}

func newLRU(capacity int) *lru.Cache[key, *entry] {
	if capacity <= 0 {
		capacity = defaultCap
	}
	l, err := lru.New[key, *entry](capacity)
	if err != nil { // only for a non-positive size, excluded above
		panic(err)
	}
	return l
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func floorOption(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return defaultMinTTL
	case d < 0:
		return 0
	}
	return d
}

// seconds converts d to a TTL in whole seconds, truncating and clamping to
// the range RFC 2181 allows.
func seconds(d time.Duration) uint32 {
	s := d / time.Second
	if s > maxTTL {
		return maxTTL
	}
	return uint32(s)
}

// keyFor returns the key of req, or false when req is not a cacheable query
// (nil, not exactly one question, or not a QUERY).
func keyFor(req *dns.Msg) (key, bool) {
	if req == nil || len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		return key{}, false
	}
	q := req.Question[0]
	k := key{
		name:   strings.ToLower(q.Name),
		qtype:  q.Qtype,
		qclass: q.Qclass,
		cd:     req.CheckingDisabled,
	}
	if opt := req.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k, true
}

// peek returns the entry for k from either cache, the success one first,
// without touching the LRU order.
func (c *Cache) peek(k key) *entry {
	if e, ok := c.success.Peek(k); ok {
		return e
	}
	if e, ok := c.denial.Peek(k); ok {
		return e
	}
	return nil
}

// lookup returns the success and the denial entry for k, marking them
// recently used. Both exist only when a SERVFAIL was kept next to an
// earlier answer; otherwise Set keeps at most one of the two caches
// holding k.
func (c *Cache) lookup(k key) (success, denial *entry) {
	success, _ = c.success.Get(k)
	denial, _ = c.denial.Get(k)
	return success, denial
}

// usable reports whether e may still be served at now, fresh or within
// the serve-stale window.
func (c *Cache) usable(e *entry, now time.Time) bool {
	return e != nil && (e.fresh(now) || c.serveStale > 0 && e.elapsed(now)-e.lifetime() < c.serveStale)
}

// freshEntry returns the unexpired entry Get serves: the success one
// first. A kept SERVFAIL never hides an answer: while a success entry may
// still be served stale, the SERVFAIL is passed over (as in CoreDNS), so
// that the caller falls back to the stale answer.
func (c *Cache) freshEntry(s, d *entry, now time.Time) *entry {
	if s != nil && s.fresh(now) {
		return s
	}
	if d == nil || !d.fresh(now) || d.failure && c.usable(s, now) {
		return nil
	}
	return d
}

// decayed returns the TTL mapping of a fresh answer spent in cache: each
// record's stored TTL less the whole seconds spent, never below 0, or the
// stored TTL unchanged with KeepTTL.
func (c *Cache) decayed(spent time.Duration) func(uint32) uint32 {
	if c.keepTTL {
		spent = 0
	}
	dec := uint32(min(spent/time.Second, maxTTL))
	return func(ttl uint32) uint32 {
		if ttl <= dec {
			return 0
		}
		return ttl - dec
	}
}

// Get looks up the answer for req. It returns a fresh *dns.Msg (a copy:
// callers may modify it) with the request's ID and question (letter case as
// asked), every TTL decremented by the whole seconds spent in cache (never
// below 0, never more than cached; unchanged with KeepTTL), and what kind
// of hit it was: Miss (resp is nil) or Fresh, possibly with the Prefetch
// flag. Expired entries are a Miss; use GetStale to fall back to them.
func (c *Cache) Get(req *dns.Msg) (resp *dns.Msg, hit Hit) {
	k, ok := keyFor(req)
	if !ok {
		c.misses.Add(1)
		return nil, Miss
	}
	now := c.now()
	s, d := c.lookup(k)
	e := c.freshEntry(s, d, now)
	if e == nil {
		c.misses.Add(1)
		return nil, Miss
	}
	c.hit(e == d)
	hit = Fresh
	if c.prefetch > 0 && e.recordHit(c, now) {
		c.prefetches.Add(1)
		hit |= Prefetch
	}
	return e.toMsg(req, k.do, c.decayed(e.elapsed(now))), hit
}

// hit counts a hit on an entry of the denial cache or not.
func (c *Cache) hit(denial bool) {
	c.hits.Add(1)
	if denial {
		c.denialHits.Add(1)
	}
}

// GetStale returns the answer for req from an entry that expired less than
// ServeStale ago, with every TTL set to StaleTTL (30 s by default, RFC
// 8767), and hit Stale; the Prefetch flag is added for the one caller that
// should refresh the entry (again only after StaleRecheck, should no fresh
// answer have been Set meanwhile). A stale success entry is preferred to a
// stale denial; a kept SERVFAIL is never served stale. GetStale returns nil
// and Miss when serve-stale is off or there is no such entry. Should the
// entry be unexpired (a fresh answer was Set since the caller's Get), it is
// returned as Get would return it, with hit Fresh. Like Get's answer, the
// message is the caller's to modify.
func (c *Cache) GetStale(req *dns.Msg) (*dns.Msg, Hit) {
	k, ok := keyFor(req)
	if !ok {
		return nil, Miss
	}
	now := c.now()
	s, d := c.lookup(k)
	if e := c.freshEntry(s, d, now); e != nil {
		c.hit(e == d)
		return e.toMsg(req, k.do, c.decayed(e.elapsed(now))), Fresh
	}
	e := s
	if !c.usable(e, now) {
		e = d
	}
	if !c.usable(e, now) || e.failure {
		return nil, Miss
	}
	c.staleServed.Add(1)
	hit := Stale
	if e.claimRefresh(now, c.staleRecheck) {
		hit |= Prefetch
	}
	return e.toMsg(req, k.do, func(uint32) uint32 { return c.staleTTL }), hit
}

// Set stores resp, the upstream's answer to req, if it is cacheable (see the
// package documentation for what is and how long). It stores its own copy,
// without OPT and TSIG records; resp is not modified or retained. A stored
// answer replaces the previous entry for the same key in either cache, but
// a SERVFAIL does not replace a success entry.
//
// Set returns resp as the client should get it now: when resp is cacheable
// (even in a zone excluded by NoSuccess or NoDenial), a copy whose records
// carry the TTLs a Get at once would serve (capped at the entry's TTL), so
// that the first answer and the cached ones agree; otherwise resp itself.
func (c *Cache) Set(req, resp *dns.Msg) *dns.Msg {
	k, ok := keyFor(req)
	if !ok || resp == nil || !matches(req.Question[0], resp) {
		return resp
	}
	now := c.now()
	kind, ttl, ok := c.classify(resp, now)
	if !ok {
		return resp
	}
	out := capTTLs(resp, ttl)
	if excluded(k.name, kind, c.noSuccess, c.noDenial) {
		return out
	}
	e := newEntry(resp, ttl, now)
	e.failure = kind == failureKind
	if old := c.peek(k); old != nil {
		e.inherit(old, now, c.window)
	}
	if kind != successKind {
		if c.denial.Add(k, e) {
			c.denialEvictions.Add(1)
		}
		if kind == denialKind {
			c.success.Remove(k)
		}
		return out
	}
	if c.success.Add(k, e) {
		c.successEvictions.Add(1)
	}
	c.denial.Remove(k)
	return out
}

// excluded reports whether answers of kind for name are not to be kept.
func excluded(name string, kind kind, noSuccess, noDenial []string) bool {
	zones := noDenial
	if kind == successKind {
		zones = noSuccess
	}
	for _, z := range zones {
		if dns.IsSubDomain(z, name) {
			return true
		}
	}
	return false
}

// capTTLs returns a shallow copy of resp whose records (hop-by-hop ones
// aside, which are kept as they are) are copies with their TTLs capped at
// ttl, as newEntry stores them.
func capTTLs(resp *dns.Msg, ttl uint32) *dns.Msg {
	out := *resp
	capRRs := func(rrs []dns.RR) []dns.RR {
		if len(rrs) == 0 {
			return rrs
		}
		cp := make([]dns.RR, len(rrs))
		for i, rr := range rrs {
			if hopByHop(rr) || rrTTL(rr) <= ttl && rr.Header().Ttl == rrTTL(rr) {
				cp[i] = rr
				continue
			}
			cp[i] = dns.Copy(rr)
			cp[i].Header().Ttl = min(rrTTL(rr), ttl)
		}
		return cp
	}
	out.Answer, out.Ns, out.Extra = capRRs(resp.Answer), capRRs(resp.Ns), capRRs(resp.Extra)
	return &out
}

// Len returns the number of entries in the success and the denial cache,
// expired ones included.
func (c *Cache) Len() (success, denial int) {
	return c.success.Len(), c.denial.Len()
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:             c.hits.Load(),
		DenialHits:       c.denialHits.Load(),
		Misses:           c.misses.Load(),
		Prefetches:       c.prefetches.Load(),
		StaleServed:      c.staleServed.Load(),
		SuccessEvictions: c.successEvictions.Load(),
		DenialEvictions:  c.denialEvictions.Load(),
	}
}
