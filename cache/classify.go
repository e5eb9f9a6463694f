package cache

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// matches reports whether resp is a response to a query with question q: QR
// set, opcode QUERY, exactly one question with the same name (in any letter
// case), type and class.
func matches(q dns.Question, resp *dns.Msg) bool {
	if !resp.Response || resp.Opcode != dns.OpcodeQuery || len(resp.Question) != 1 {
		return false
	}
	rq := resp.Question[0]
	return rq.Qtype == q.Qtype && rq.Qclass == q.Qclass && strings.EqualFold(rq.Name, q.Name)
}

// kind is the part of the cache an answer goes to.
type kind int

const (
	successKind kind = iota // an answer: the success cache
	denialKind              // NXDOMAIN or NODATA: the denial cache
	failureKind             // SERVFAIL or NOTIMP: the denial cache, for ServFailTTL
)

// classify decides whether resp may be cached, in which cache and for how
// many seconds. resp's question is assumed to match the request.
func (c *Cache) classify(resp *dns.Msg, now time.Time) (k kind, ttl uint32, ok bool) {
	q := resp.Question[0]
	if resp.Truncated || q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		return 0, 0, false
	}
	if expiredSignature(resp, now) {
		return 0, 0, false
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		k = successKind
		if !answers(resp.Answer, q) {
			k = denialKind // NODATA, possibly after a CNAME chain
		}
	case dns.RcodeNameError:
		k = denialKind
	case dns.RcodeServerFailure, dns.RcodeNotImplemented:
		// CoreDNS keeps these for the servfail duration, whatever
		// their records say.
		return failureKind, c.failTTL, c.failTTL > 0
	default:
		return 0, 0, false // REFUSED, FORMERR, ...
	}

	var lo, hi uint32
	if k == denialKind {
		neg, hasSOA := negativeTTL(resp.Ns)
		if !hasSOA {
			return 0, 0, false // RFC 2308 section 5
		}
		ttl = min(neg, minTTL(resp))
		lo, hi = c.denialMin, c.denialMax
	} else {
		ttl = minTTL(resp)
		lo, hi = c.successMin, c.successMax
	}
	ttl = min(max(ttl, lo), hi)
	if ttl == 0 {
		return 0, 0, false
	}
	return k, ttl, true
}

// rrTTL returns the TTL of rr, reading values with the top bit set as 0
// (RFC 2181 section 8).
func rrTTL(rr dns.RR) uint32 {
	t := rr.Header().Ttl
	if t > maxTTL {
		return 0
	}
	return t
}

// hopByHop reports whether rr belongs to the transport rather than the
// answer: the EDNS OPT pseudo-record and TSIG. Such records are neither
// stored nor counted for the TTL.
func hopByHop(rr dns.RR) bool {
	t := rr.Header().Rrtype
	return t == dns.TypeOPT || t == dns.TypeTSIG
}

// minTTL returns the smallest TTL over the answer, authority and additional
// sections, hop-by-hop records excluded, or maxTTL for a message without
// records.
func minTTL(m *dns.Msg) uint32 {
	lo := uint32(maxTTL)
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if !hopByHop(rr) {
				lo = min(lo, rrTTL(rr))
			}
		}
	}
	return lo
}

// negativeTTL returns the RFC 2308 section 5 negative-caching TTL from the
// authority section: the smaller of the SOA record's TTL and its MINIMUM
// field. It reports false when there is no SOA.
func negativeTTL(ns []dns.RR) (uint32, bool) {
	ttl, found := uint32(maxTTL), false
	for _, rr := range ns {
		soa, ok := rr.(*dns.SOA)
		if !ok {
			continue
		}
		found = true
		minimum := soa.Minttl
		if minimum > maxTTL {
			minimum = 0
		}
		ttl = min(ttl, rrTTL(soa), minimum)
	}
	return ttl, found
}

// expiredSignature reports whether m carries an RRSIG outside its validity
// period at now; such an answer would fail validation and is not kept.
func expiredSignature(m *dns.Msg, now time.Time) bool {
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if sig, ok := rr.(*dns.RRSIG); ok && !sig.ValidityPeriod(now) {
				return true
			}
		}
	}
	return false
}

// answers reports whether the answer section answers question q: for ANY a
// record of the question's class is owned by the name, for CNAME the name
// has a CNAME, and for any other type a record of that type is owned by the
// name or by the end of the CNAME chain starting there (RFC 1034 section
// 3.6.2). A chain that forks (two different targets for one owner) or loops
// answers nothing, so that a malformed response is re-asked rather than kept.
func answers(answer []dns.RR, q dns.Question) bool {
	classOK := func(class uint16) bool { return q.Qclass == dns.ClassANY || class == q.Qclass }
	name := q.Name
	// Every step follows a distinct CNAME record, so a longer walk is a loop.
	for range len(answer) + 1 {
		next := ""
		for _, rr := range answer {
			h := rr.Header()
			if !classOK(h.Class) || !strings.EqualFold(h.Name, name) {
				continue
			}
			if q.Qtype == dns.TypeANY || h.Rrtype == q.Qtype {
				return true
			}
			if cname, ok := rr.(*dns.CNAME); ok {
				if next != "" && !strings.EqualFold(next, cname.Target) {
					return false
				}
				next = cname.Target
			}
		}
		if next == "" {
			return false
		}
		name = next
	}
	return false
}
