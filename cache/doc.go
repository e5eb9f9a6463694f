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
//
// Not cached: SERVFAIL (CoreDNS keeps it 5 s; svcdisc does not, so that a
// transient upstream failure is retried at once and a stale answer can be
// served instead), REFUSED, FORMERR, NOTIMP and every other rcode; truncated
// responses; denials without an SOA (RFC 2308 section 5), which includes
// referrals and empty NOERROR answers; zone transfers (AXFR, IXFR) and
// opcodes other than QUERY; responses whose question does not match the
// request or whose QR bit is not set; and responses carrying an RRSIG outside
// its validity period. Classes other than IN are cached like IN: the class
// is part of the key, so a CHAOS answer can never answer an IN question.
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
// below 0. Records are not flattened to one TTL as CoreDNS does, so a record
// the upstream gave TTL 0 is still handed out with TTL 0 while the entry lives
// for the minimum TTL.
//
// # Stale answers
//
// With ServeStale set, an expired entry stays available to GetStale for that
// long after it expired (RFC 8767). Such an answer carries TTL StaleAnswerTTL
// (30 s) on every record, RFC 8767's recommended value, rather than CoreDNS's
// historical 0: RFC 8767 section 4 requires a TTL greater than zero, and 0
// would make every client come straight back while the upstream is down.
//
// # Bounds
//
// Each cache holds at most its capacity of entries, least recently used out
// first, whatever the query mix. Expired entries are not swept: they stay
// (available to GetStale) until a new answer replaces them or the LRU order
// pushes them out. All methods are safe for concurrent use.
package cache
