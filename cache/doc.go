// Package cache owns svcdisc's response cache for the names it forwards
// upstream: given the upstream's answer to a query it decides whether and for
// how long the answer may be kept, and it hands the answer back to later
// identical queries with its TTLs counted down. It follows the semantics of
// CoreDNS's cache plugin where the two can be compared (separate success and
// denial caches, 3600 s and 1800 s maximum TTLs, a 5 s minimum, prefetch of
// popular entries, serve-stale), built on hashicorp/golang-lru.
//
// It knows DNS messages and nothing else: no Kubernetes objects, no sockets,
// no upstream selection. The caller (the resolver) decides when to ask the
// cache, when to forward, when to prefetch and when to fall back to a stale
// answer; this package only answers "what do I have for this question".
//
// # Keys
//
// An entry is identified by the lower-cased question name, the question type
// and class, and the DO and CD bits of the request. A DNSSEC-OK answer is
// therefore never served to a client that did not ask for DNSSEC, and the
// other way round; a CD answer is never served to a validating client.
//
// # What is cached
//
//   - NOERROR whose answer section answers the question (the record type
//     asked for is at the end of the CNAME chain starting at the question
//     name, or the question is for CNAME or ANY) goes to the success cache,
//     for the smallest TTL of all its records, the EDNS OPT record excluded.
//   - NXDOMAIN, and NOERROR without an answer to the question (NODATA,
//     including a CNAME chain that does not reach the type asked for), go to
//     the denial cache if the authority section holds an SOA, for the RFC 2308
//     negative TTL: the smaller of the SOA's own TTL and its MINIMUM field,
//     and never longer than any other record in the message.
//   - Either TTL is floored at the minimum TTL of its cache and capped at the
//     maximum TTL, the cap winning. An entry whose TTL is still 0 after that
//     (only possible when the floor is disabled) is not stored, like CoreDNS.
//   - SERVFAIL and NOTIMP go to the denial cache for ServFailTTL (5 s by
//     default, at most 5 minutes, off when negative), whatever their records
//     say, as CoreDNS does. Such an entry never hides an answer: a fresh
//     success entry for the same key is served before it, and while an
//     expired success entry can still be served stale the SERVFAIL counts as
//     a miss. A SERVFAIL is never served stale itself.
//   - NoSuccess and NoDenial name zones whose answers are not stored in the
//     success or the denial cache (SERVFAIL counting as a denial); Set still
//     caps their TTLs as below.
//
// Not cached: REFUSED, FORMERR and every other rcode; truncated responses;
// denials without an SOA (RFC 2308 section 5), which includes referrals and
// empty NOERROR answers; zone transfers (AXFR, IXFR) and opcodes other than
// QUERY; responses whose question does not match the request or whose QR
// bit is not set; and responses carrying an RRSIG outside its validity
// period. Classes other than IN are cached like IN: the class is part of the
// key, so a CHAOS answer can never answer an IN question.
//
// Set returns the answer the caller should hand on now: for a cacheable
// response, a copy with every record's TTL capped at the entry's TTL, which
// is what Get would serve at once, so that a client sees the same TTLs on the
// first answer as on the cached ones.
//
// # What Get returns
//
// A deep copy, so callers may modify it, with the request's ID, RD and CD
// bits and question (letter case as asked), the upstream's rcode, AA and RA
// bits, and the AD bit as the upstream set it only when the request had the
// DO bit (RFC 3225); otherwise AD is clear. The upstream's OPT (and TSIG)
// records are never stored, so the message has no OPT: the resolver adds its
// own. Every record's TTL is its stored TTL (its upstream TTL capped at the
// entry's TTL) minus the whole seconds the entry has spent in the cache, never
// below 0 (with KeepTTL, the stored TTL unchanged). Records are not raised
// to the minimum TTL as CoreDNS does (it sets every record to the entry's
// TTL): a record the upstream gave TTL 2 is handed out with TTL 2 while the
// entry lives for the 5 s minimum, since the floor is there to spare the
// upstream, not to tell clients to keep a record longer than its owner
// allows. Above the floor the two agree: no record outlives the entry, and
// the entry lives for the smallest TTL.
//
// # Stale answers
//
// With ServeStale set, an expired entry stays available to GetStale for that
// long after it expired (RFC 8767). Such an answer carries StaleTTL on every
// record, by default StaleAnswerTTL (30 s), RFC 8767's recommended value,
// rather than CoreDNS's historical 0: RFC 8767 section 4 requires a TTL
// greater than zero, and 0 would make every client come straight back while
// the upstream is down. GetStale tells one caller per StaleRecheck (at least
// 5 s) to refresh the entry, so that concurrent queries for an expired name
// start one refresh, not one each.
//
// # Bounds
//
// Each cache holds at most its capacity of entries, least recently used out
// first, whatever the query mix. Expired entries are not swept: they stay
// (available to GetStale) until a new answer replaces them or the LRU order
// pushes them out. All methods are safe for concurrent use.
package cache
