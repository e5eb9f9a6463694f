package cache

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// clock is a manually advanced clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newCache(t testing.TB, o Options) (*Cache, *clock) {
	t.Helper()
	clk := newClock()
	o.Now = clk.Now
	return New(o), clk
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("dns.NewRR(%q): %v", s, err)
	}
	return r
}

func rrs(t testing.TB, ss ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, s := range ss {
		out = append(out, rr(t, s))
	}
	return out
}

// query returns a recursive query; do adds an OPT record with the DO bit.
func query(name string, qtype uint16, do bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 4242
	if do {
		m.SetEdns0(1232, true)
	}
	return m
}

// reply returns an upstream reply to req with an OPT record of its own.
func reply(req *dns.Msg, rcode int, answer, ns, extra []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	m.Answer = answer
	m.Ns = ns
	m.Extra = extra
	m.SetEdns0(1232, req.IsEdns0() != nil && req.IsEdns0().Do())
	return m
}

func ttls(rrs []dns.RR) []uint32 {
	var out []uint32
	for _, r := range rrs {
		out = append(out, r.Header().Ttl)
	}
	return out
}

func equalTTLs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const soa = "example.com. %d IN SOA ns.example.com. hostmaster.example.com. 1 7200 3600 1209600 %d"

func TestGetServesSuccessWithTTLsDecayedByTimeInCache(t *testing.T) {
	c, clk := newCache(t, Options{})
	req := query("www.example.com.", dns.TypeA, false)
	c.Set(req, reply(req, dns.RcodeSuccess,
		rrs(t, "www.example.com. 600 IN CNAME web.example.com.", "web.example.com. 300 IN A 192.0.2.1"),
		rrs(t, "example.com. 900 IN NS ns.example.com."),
		rrs(t, "ns.example.com. 900 IN A 192.0.2.53")))

	tests := []struct {
		advance time.Duration
		// answer, authority and additional TTLs after advancing
		answer, ns, extra []uint32
	}{
		{0, []uint32{300, 300}, []uint32{300}, []uint32{300}},
		{100 * time.Second, []uint32{200, 200}, []uint32{200}, []uint32{200}},
		{500 * time.Millisecond, []uint32{200, 200}, []uint32{200}, []uint32{200}},
		{199 * time.Second, []uint32{1, 1}, []uint32{1}, []uint32{1}},
	}
	for _, tc := range tests {
		clk.Advance(tc.advance)
		resp, hit := c.Get(req)
		if hit != Fresh || resp == nil {
			t.Fatalf("after %v: hit %v, want fresh", tc.advance, hit)
		}
		if !equalTTLs(ttls(resp.Answer), tc.answer) || !equalTTLs(ttls(resp.Ns), tc.ns) || !equalTTLs(ttls(resp.Extra), tc.extra) {
			t.Errorf("after %v: TTLs %v/%v/%v, want %v/%v/%v", tc.advance,
				ttls(resp.Answer), ttls(resp.Ns), ttls(resp.Extra), tc.answer, tc.ns, tc.extra)
		}
		if resp.Id != req.Id || !resp.Response || !resp.RecursionDesired || !resp.RecursionAvailable || resp.Rcode != dns.RcodeSuccess {
			t.Errorf("header %+v does not answer the request", resp.MsgHdr)
		}
	}
}

func TestRecordsKeepTheirOwnLowerTTL(t *testing.T) {
	// A record below the minimum TTL keeps its own TTL (reaching 0) while the
	// entry lives for the minimum.
	c, clk := newCache(t, Options{})
	req := query("low.example.com.", dns.TypeA, false)
	c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, "low.example.com. 2 IN A 192.0.2.1"), nil, nil))

	for _, want := range []uint32{2, 1, 0, 0, 0} {
		resp, hit := c.Get(req)
		if hit != Fresh {
			t.Fatalf("hit %v, want fresh", hit)
		}
		if got := resp.Answer[0].Header().Ttl; got != want {
			t.Errorf("TTL %d, want %d", got, want)
		}
		clk.Advance(time.Second)
	}
	if _, hit := c.Get(req); hit != Miss {
		t.Errorf("after 5 s: hit %v, want miss", hit)
	}
}

func TestGetMissesOnceTheTTLHasRunOut(t *testing.T) {
	c, clk := newCache(t, Options{})
	req := query("www.example.com.", dns.TypeA, false)
	c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, "www.example.com. 60 IN A 192.0.2.1"), nil, nil))

	clk.Advance(60*time.Second - time.Millisecond)
	resp, hit := c.Get(req)
	if hit != Fresh || resp.Answer[0].Header().Ttl != 1 {
		t.Fatalf("just before expiry: hit %v, resp %v; want fresh with TTL 1", hit, resp)
	}
	clk.Advance(time.Millisecond)
	if resp, hit := c.Get(req); hit != Miss || resp != nil {
		t.Fatalf("at expiry: hit %v, resp %v; want miss", hit, resp)
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 1 {
		t.Errorf("stats %+v, want 1 hit and 1 miss", st)
	}
}

func TestDenialsAreCachedForTheRFC2308NegativeTTL(t *testing.T) {
	tests := []struct {
		name           string
		opts           Options
		rcode          int
		soaTTL, soaMin uint32
		want           uint32 // seconds the entry lives
	}{
		{"NXDOMAIN with SOA TTL below MINIMUM", Options{}, dns.RcodeNameError, 60, 300, 60},
		{"NXDOMAIN with MINIMUM below SOA TTL", Options{}, dns.RcodeNameError, 300, 60, 60},
		{"NODATA with SOA TTL below MINIMUM", Options{}, dns.RcodeSuccess, 45, 600, 45},
		{"NODATA with MINIMUM below SOA TTL", Options{}, dns.RcodeSuccess, 600, 45, 45},
		{"capped at the default 1800 s", Options{}, dns.RcodeNameError, 86400, 86400, 1800},
		{"capped at DenialTTL", Options{DenialTTL: 100 * time.Second}, dns.RcodeSuccess, 3600, 3600, 100},
		{"floored at the default 5 s", Options{}, dns.RcodeNameError, 1, 1, 5},
		{"floored at MinDenialTTL", Options{MinDenialTTL: 30 * time.Second}, dns.RcodeNameError, 10, 10, 30},
		{"SOA MINIMUM 0 floored", Options{}, dns.RcodeNameError, 3600, 0, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newCache(t, tc.opts)
			req := query("nope.example.com.", dns.TypeA, false)
			c.Set(req, reply(req, tc.rcode, nil, rrs(t, fmt.Sprintf(soa, tc.soaTTL, tc.soaMin)), nil))
			if s, d := c.Len(); s != 0 || d != 1 {
				t.Fatalf("Len = %d, %d; want the denial cache to hold it", s, d)
			}

			resp, hit := c.Get(req)
			if hit != Fresh || resp.Rcode != tc.rcode || len(resp.Answer) != 0 || len(resp.Ns) != 1 {
				t.Fatalf("hit %v, resp %v; want the denial", hit, resp)
			}
			if got, want := resp.Ns[0].Header().Ttl, min(tc.want, tc.soaTTL); got != want {
				t.Errorf("SOA TTL served %d, want %d", got, want)
			}
			clk.Advance(time.Duration(tc.want)*time.Second - time.Millisecond)
			if _, hit := c.Get(req); hit != Fresh {
				t.Errorf("just before %d s: hit %v, want fresh", tc.want, hit)
			}
			clk.Advance(time.Millisecond)
			if _, hit := c.Get(req); hit != Miss {
				t.Errorf("at %d s: hit %v, want miss", tc.want, hit)
			}
		})
	}
}

func TestNegativeTTLIsBoundedByOtherRecords(t *testing.T) {
	// NXDOMAIN at the end of a CNAME chain: the CNAME's TTL bounds the entry.
	c, clk := newCache(t, Options{})
	req := query("alias.example.com.", dns.TypeA, false)
	c.Set(req, reply(req, dns.RcodeNameError,
		rrs(t, "alias.example.com. 20 IN CNAME gone.example.com."),
		rrs(t, fmt.Sprintf(soa, 300, 300)), nil))
	clk.Advance(19 * time.Second)
	if resp, hit := c.Get(req); hit != Fresh || resp.Rcode != dns.RcodeNameError {
		t.Fatalf("hit %v, resp %v; want the cached NXDOMAIN", hit, resp)
	}
	clk.Advance(time.Second)
	if _, hit := c.Get(req); hit != Miss {
		t.Errorf("at 20 s: hit %v, want miss", hit)
	}
}

func TestCNAMEChainNotReachingTheTypeIsNODATA(t *testing.T) {
	chain := rrs(t, "a.example.com. 300 IN CNAME b.example.com.", "b.example.com. 300 IN TXT \"x\"")
	t.Run("with SOA it is a cached denial", func(t *testing.T) {
		c, _ := newCache(t, Options{})
		req := query("a.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeSuccess, chain, rrs(t, fmt.Sprintf(soa, 60, 60)), nil))
		if s, d := c.Len(); s != 0 || d != 1 {
			t.Errorf("Len = %d, %d; want one denial", s, d)
		}
	})
	t.Run("without SOA it is not cached", func(t *testing.T) {
		c, _ := newCache(t, Options{})
		req := query("a.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeSuccess, chain, nil, nil))
		if s, d := c.Len(); s != 0 || d != 0 {
			t.Errorf("Len = %d, %d; want nothing", s, d)
		}
	})
}

func TestUncacheableResponsesAreNotStored(t *testing.T) {
	a := "www.example.com. 300 IN A 192.0.2.1"
	tests := []struct {
		name string
		opts Options
		// build returns the request and the upstream's response.
		build func(t *testing.T) (req, resp *dns.Msg)
	}{
		{"NXDOMAIN without SOA", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("nope.example.com.", dns.TypeA, false)
			return req, reply(req, dns.RcodeNameError, nil, nil, nil)
		}},
		{"NODATA without SOA", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeAAAA, false)
			return req, reply(req, dns.RcodeSuccess, nil, nil, nil)
		}},
		{"referral without SOA", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			return req, reply(req, dns.RcodeSuccess, nil, rrs(t, "example.com. 300 IN NS ns.example.com."), nil)
		}},
		{"SERVFAIL with servfail 0", Options{ServFailTTL: -1}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			return req, reply(req, dns.RcodeServerFailure, nil, nil, nil)
		}},
		{"REFUSED", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			return req, reply(req, dns.RcodeRefused, nil, nil, nil)
		}},
		{"FORMERR", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			return req, reply(req, dns.RcodeFormatError, nil, nil, nil)
		}},
		{"NOTIMP with servfail 0", Options{ServFailTTL: -1}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			return req, reply(req, dns.RcodeNotImplemented, nil, nil, nil)
		}},
		{"SERVFAIL with an answer, servfail 0", Options{ServFailTTL: -1}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			return req, reply(req, dns.RcodeServerFailure, rrs(t, a), nil, nil)
		}},
		{"truncated", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			resp := reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil)
			resp.Truncated = true
			return req, resp
		}},
		{"truncated NXDOMAIN", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("nope.example.com.", dns.TypeA, false)
			resp := reply(req, dns.RcodeNameError, nil, rrs(t, fmt.Sprintf(soa, 60, 60)), nil)
			resp.Truncated = true
			return req, resp
		}},
		{"question name differs", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			other := query("evil.example.com.", dns.TypeA, false)
			return req, reply(other, dns.RcodeSuccess, rrs(t, "evil.example.com. 300 IN A 192.0.2.66"), nil, nil)
		}},
		{"question type differs", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeAAAA, false)
			return req, reply(query("www.example.com.", dns.TypeA, false), dns.RcodeSuccess, rrs(t, a), nil, nil)
		}},
		{"question class differs", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			resp := reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil)
			resp.Question[0].Qclass = dns.ClassCHAOS
			return req, resp
		}},
		{"no question", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			resp := reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil)
			resp.Question = nil
			return req, resp
		}},
		{"QR bit clear", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			resp := reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil)
			resp.Response = false
			return req, resp
		}},
		{"zone transfer", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("example.com.", dns.TypeAXFR, false)
			return req, reply(req, dns.RcodeSuccess, rrs(t, fmt.Sprintf(soa, 60, 60)), nil, nil)
		}},
		{"expired RRSIG", Options{}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, true)
			return req, reply(req, dns.RcodeSuccess, rrs(t, a,
				"www.example.com. 300 IN RRSIG A 13 3 300 20200101000000 20191201000000 12345 example.com. c2lnbmF0dXJl"), nil, nil)
		}},
		{"TTL 0 with the floor disabled", Options{MinSuccessTTL: -1}, func(t *testing.T) (*dns.Msg, *dns.Msg) {
			req := query("www.example.com.", dns.TypeA, false)
			return req, reply(req, dns.RcodeSuccess, rrs(t, "www.example.com. 0 IN A 192.0.2.1"), nil, nil)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCache(t, tc.opts)
			req, resp := tc.build(t)
			c.Set(req, resp)
			if s, d := c.Len(); s != 0 || d != 0 {
				t.Fatalf("Len = %d, %d; want nothing stored", s, d)
			}
			if got, hit := c.Get(req); hit != Miss || got != nil {
				t.Errorf("Get = %v, %v; want miss", got, hit)
			}
		})
	}
}

func TestTTLZeroIsCachedForTheMinimumTTL(t *testing.T) {
	c, clk := newCache(t, Options{})
	req := query("zero.example.com.", dns.TypeA, false)
	c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, "zero.example.com. 0 IN A 192.0.2.1"), nil, nil))
	clk.Advance(4 * time.Second)
	if _, hit := c.Get(req); hit != Fresh {
		t.Fatalf("after 4 s: hit %v, want fresh", hit)
	}
	clk.Advance(time.Second)
	if _, hit := c.Get(req); hit != Miss {
		t.Fatalf("after 5 s: hit %v, want miss", hit)
	}
}

func TestSuccessTTLIsCappedAndFloored(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ttl  uint32
		want uint32
	}{
		{"default cap", Options{}, 86400, 3600},
		{"SuccessTTL cap", Options{SuccessTTL: 30 * time.Second}, 300, 30},
		{"default floor", Options{}, 1, 5},
		{"MinSuccessTTL floor", Options{MinSuccessTTL: 60 * time.Second}, 10, 60},
		{"cap wins over floor", Options{SuccessTTL: 10 * time.Second, MinSuccessTTL: 60 * time.Second}, 1, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newCache(t, tc.opts)
			req := query("www.example.com.", dns.TypeA, false)
			c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, fmt.Sprintf("www.example.com. %d IN A 192.0.2.1", tc.ttl)), nil, nil))
			resp, _ := c.Get(req)
			if resp == nil {
				t.Fatal("not cached")
			}
			if got, want := resp.Answer[0].Header().Ttl, min(tc.ttl, tc.want); got != want {
				t.Errorf("served TTL %d, want %d", got, want)
			}
			clk.Advance(time.Duration(tc.want)*time.Second - time.Millisecond)
			if _, hit := c.Get(req); hit != Fresh {
				t.Errorf("just before %d s: hit %v, want fresh", tc.want, hit)
			}
			clk.Advance(time.Millisecond)
			if _, hit := c.Get(req); hit != Miss {
				t.Errorf("at %d s: hit %v, want miss", tc.want, hit)
			}
		})
	}
}

func TestEachCacheIsBoundedByItsCapacityAndCountsEvictions(t *testing.T) {
	c, _ := newCache(t, Options{SuccessCap: 2, DenialCap: 3})
	for i := range 5 {
		name := fmt.Sprintf("host%d.example.com.", i)
		req := query(name, dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, name+" 300 IN A 192.0.2.1"), nil, nil))
		nx := query(fmt.Sprintf("nx%d.example.com.", i), dns.TypeA, false)
		c.Set(nx, reply(nx, dns.RcodeNameError, nil, rrs(t, fmt.Sprintf(soa, 60, 60)), nil))
	}
	if s, d := c.Len(); s != 2 || d != 3 {
		t.Errorf("Len = %d, %d; want 2, 3", s, d)
	}
	st := c.Stats()
	if st.SuccessEvictions != 3 || st.DenialEvictions != 2 {
		t.Errorf("evictions %d, %d; want 3, 2", st.SuccessEvictions, st.DenialEvictions)
	}
	for name, want := range map[string]Hit{
		"host2.example.com.": Miss, "host3.example.com.": Fresh, "host4.example.com.": Fresh,
		"nx1.example.com.": Miss, "nx2.example.com.": Fresh, "nx4.example.com.": Fresh,
	} {
		if _, hit := c.Get(query(name, dns.TypeA, false)); hit != want {
			t.Errorf("%s: hit %v, want %v", name, hit, want)
		}
	}
}

func TestTheLeastRecentlyUsedEntryIsEvictedFirst(t *testing.T) {
	c, _ := newCache(t, Options{SuccessCap: 2})
	set := func(name string) {
		req := query(name, dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, name+" 300 IN A 192.0.2.1"), nil, nil))
	}
	set("a.example.com.")
	set("b.example.com.")
	c.Get(query("a.example.com.", dns.TypeA, false))
	set("c.example.com.")
	for name, want := range map[string]Hit{"a.example.com.": Fresh, "b.example.com.": Miss, "c.example.com.": Fresh} {
		if _, hit := c.Get(query(name, dns.TypeA, false)); hit != want {
			t.Errorf("%s: hit %v, want %v", name, hit, want)
		}
	}
}

func TestRandomNamesCannotGrowTheCacheBeyondItsCapacity(t *testing.T) {
	const capacity, names = 1000, 100_000
	c, clk := newCache(t, Options{SuccessCap: capacity, DenialCap: capacity})
	r := rand.New(rand.NewPCG(1, 2))
	nxSOA := rr(t, fmt.Sprintf(soa, 60, 60))
	for i := range names {
		name := fmt.Sprintf("%016x.example.com.", r.Uint64())
		req := query(name, dns.TypeA, i%3 == 0)
		if i%2 == 0 {
			c.Set(req, reply(req, dns.RcodeSuccess, []dns.RR{&dns.A{
				Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A:   []byte{192, 0, 2, 1},
			}}, nil, nil))
		} else {
			c.Set(req, reply(req, dns.RcodeNameError, nil, []dns.RR{nxSOA}, nil))
		}
		c.Get(req)
		if i%1000 == 0 {
			clk.Advance(time.Second)
			if s, d := c.Len(); s > capacity || d > capacity {
				t.Fatalf("after %d names: Len = %d, %d; want at most %d each", i, s, d, capacity)
			}
		}
	}
	s, d := c.Len()
	if s > capacity || d > capacity {
		t.Fatalf("Len = %d, %d; want at most %d each", s, d, capacity)
	}
	st := c.Stats()
	if got := st.SuccessEvictions + st.DenialEvictions; got != names-uint64(s+d) {
		t.Errorf("evictions %d, want %d", got, names-uint64(s+d))
	}
}

func TestKeyIgnoresLetterCaseAndTheQuestionIsEchoedAsAsked(t *testing.T) {
	c, _ := newCache(t, Options{})
	req := query("WWW.Example.COM.", dns.TypeA, false)
	c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, "WWW.Example.COM. 300 IN A 192.0.2.1"), nil, nil))

	ask := query("www.eXAMPLE.com.", dns.TypeA, false)
	ask.Id = 777
	resp, hit := c.Get(ask)
	if hit != Fresh {
		t.Fatalf("hit %v, want fresh", hit)
	}
	if resp.Id != 777 {
		t.Errorf("ID %d, want 777", resp.Id)
	}
	if len(resp.Question) != 1 || resp.Question[0] != ask.Question[0] {
		t.Errorf("question %v, want %v", resp.Question, ask.Question)
	}
	if _, hit := c.Get(query("www.example.com.", dns.TypeAAAA, false)); hit != Miss {
		t.Errorf("other type: hit %v, want miss", hit)
	}
}

func TestDNSSECBitsSeparateEntries(t *testing.T) {
	a := "www.example.com. 300 IN A 192.0.2.1"
	sig := "www.example.com. 300 IN RRSIG A 13 3 300 20990101000000 20200101000000 12345 example.com. c2lnbmF0dXJl"

	c, _ := newCache(t, Options{})
	plain := query("www.example.com.", dns.TypeA, false)
	do := query("www.example.com.", dns.TypeA, true)
	cd := query("www.example.com.", dns.TypeA, false)
	cd.CheckingDisabled = true

	doResp := reply(do, dns.RcodeSuccess, rrs(t, a, sig), nil, nil)
	doResp.AuthenticatedData = true
	c.Set(do, doResp)
	if _, hit := c.Get(plain); hit != Miss {
		t.Errorf("DO answer served to a non-DO query: hit %v", hit)
	}
	if _, hit := c.Get(cd); hit != Miss {
		t.Errorf("DO answer served to a CD query: hit %v", hit)
	}
	got, hit := c.Get(do)
	if hit != Fresh || len(got.Answer) != 2 {
		t.Fatalf("DO query: hit %v, resp %v; want the signed answer", hit, got)
	}
	if !got.AuthenticatedData {
		t.Error("AD cleared for a DO query")
	}
	if got.IsEdns0() != nil {
		t.Error("cached answer carries an OPT record")
	}

	plainResp := reply(plain, dns.RcodeSuccess, rrs(t, a), nil, nil)
	plainResp.AuthenticatedData = true
	c.Set(plain, plainResp)
	got, hit = c.Get(plain)
	if hit != Fresh || len(got.Answer) != 1 {
		t.Fatalf("non-DO query: hit %v, resp %v; want the unsigned answer", hit, got)
	}
	if got.AuthenticatedData {
		t.Error("AD kept for a non-DO query")
	}
	if got.IsEdns0() != nil {
		t.Error("cached answer carries an OPT record")
	}
	if got, _ := c.Get(do); len(got.Answer) != 2 {
		t.Errorf("DO entry overwritten by the non-DO answer: %v", got)
	}
	if s, _ := c.Len(); s != 2 {
		t.Errorf("success Len %d, want 2", s)
	}
}

func TestClassIsPartOfTheKey(t *testing.T) {
	c, _ := newCache(t, Options{})
	ch := query("version.bind.", dns.TypeTXT, false)
	ch.Question[0].Qclass = dns.ClassCHAOS
	c.Set(ch, reply(ch, dns.RcodeSuccess, rrs(t, "version.bind. 60 CH TXT \"svcdisc\""), nil, nil))
	if _, hit := c.Get(ch); hit != Fresh {
		t.Errorf("CHAOS query: hit %v, want fresh", hit)
	}
	if _, hit := c.Get(query("version.bind.", dns.TypeTXT, false)); hit != Miss {
		t.Errorf("IN query served the CHAOS answer: hit %v", hit)
	}
}

func TestAnswersAreCopies(t *testing.T) {
	c, _ := newCache(t, Options{})
	req := query("www.example.com.", dns.TypeA, false)
	resp := reply(req, dns.RcodeSuccess, rrs(t, "www.example.com. 300 IN A 192.0.2.1"), nil, nil)
	c.Set(req, resp)
	resp.Answer[0].(*dns.A).A[3] = 99
	resp.Answer[0].Header().Ttl = 1

	first, _ := c.Get(req)
	first.Answer[0].(*dns.A).A[3] = 66
	first.Answer[0].Header().Ttl = 7
	first.Answer = append(first.Answer, rr(t, "www.example.com. 300 IN A 192.0.2.2"))
	first.Rcode = dns.RcodeRefused

	second, _ := c.Get(req)
	if len(second.Answer) != 1 || second.Rcode != dns.RcodeSuccess {
		t.Fatalf("second answer %v altered by the first's caller", second)
	}
	a := second.Answer[0].(*dns.A)
	if a.A.String() != "192.0.2.1" || a.Hdr.Ttl != 300 {
		t.Errorf("second answer %v, want 192.0.2.1 with TTL 300", a)
	}
}

func TestSetReplacesTheEntryOfTheOtherKind(t *testing.T) {
	c, _ := newCache(t, Options{})
	req := query("new.example.com.", dns.TypeA, false)
	c.Set(req, reply(req, dns.RcodeNameError, nil, rrs(t, fmt.Sprintf(soa, 600, 600)), nil))
	c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, "new.example.com. 60 IN A 192.0.2.1"), nil, nil))
	if s, d := c.Len(); s != 1 || d != 0 {
		t.Errorf("Len = %d, %d; want 1, 0", s, d)
	}
	if resp, _ := c.Get(req); resp == nil || resp.Rcode != dns.RcodeSuccess {
		t.Errorf("Get = %v, want the new answer", resp)
	}
	c.Set(req, reply(req, dns.RcodeNameError, nil, rrs(t, fmt.Sprintf(soa, 600, 600)), nil))
	if s, d := c.Len(); s != 0 || d != 1 {
		t.Errorf("Len = %d, %d; want 0, 1", s, d)
	}
}

func TestPrefetchIsDueForPopularEntriesNearExpiry(t *testing.T) {
	// TTL 100 s, so the default 10 % makes an entry due from 90 s on.
	setup := func(t *testing.T, o Options) (*Cache, *clock, *dns.Msg) {
		c, clk := newCache(t, o)
		req := query("pop.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, "pop.example.com. 100 IN A 192.0.2.1"), nil, nil))
		return c, clk, req
	}
	// hitAt advances to each offset from the start and Gets; it returns the
	// hit kinds seen.
	hitAt := func(c *Cache, clk *clock, req *dns.Msg, offsets ...time.Duration) []Hit {
		start := clk.Now()
		var got []Hit
		for _, off := range offsets {
			clk.Advance(start.Add(off).Sub(clk.Now()))
			_, hit := c.Get(req)
			got = append(got, hit)
		}
		return got
	}
	s := time.Second
	tests := []struct {
		name    string
		opts    Options
		offsets []time.Duration
		want    []Hit
	}{
		{"off by default", Options{},
			[]time.Duration{0, 90 * s, 91 * s, 92 * s}, []Hit{Fresh, Fresh, Fresh, Fresh}},
		{"due on the third hit near expiry", Options{Prefetch: 3},
			[]time.Duration{50 * s, 89 * s, 90 * s}, []Hit{Fresh, Fresh, Fresh | Prefetch}},
		{"not due before the threshold", Options{Prefetch: 3},
			[]time.Duration{10 * s, 20 * s, 30 * s, 89 * s}, []Hit{Fresh, Fresh, Fresh, Fresh}},
		{"not due without enough hits", Options{Prefetch: 3},
			[]time.Duration{89 * s, 95 * s}, []Hit{Fresh, Fresh}},
		{"a gap longer than the window restarts the count", Options{Prefetch: 3, PrefetchWindow: 10 * s},
			[]time.Duration{60 * s, 70 * s, 81 * s, 90 * s, 95 * s}, []Hit{Fresh, Fresh, Fresh, Fresh, Fresh | Prefetch}},
		{"handed out once, again after 5 s", Options{Prefetch: 2},
			[]time.Duration{80 * s, 90 * s, 91 * s, 94 * s, 95 * s, 96 * s},
			[]Hit{Fresh, Fresh | Prefetch, Fresh, Fresh, Fresh | Prefetch, Fresh}},
		{"PrefetchPercent moves the threshold", Options{Prefetch: 1, PrefetchPercent: 50},
			[]time.Duration{49 * s, 50 * s}, []Hit{Fresh, Fresh | Prefetch}},
		{"due at the latest one second before expiry", Options{Prefetch: 1, PrefetchPercent: 1},
			[]time.Duration{98 * s, 99 * s}, []Hit{Fresh, Fresh | Prefetch}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk, req := setup(t, tc.opts)
			got := hitAt(c, clk, req, tc.offsets...)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("hits %v, want %v", got, tc.want)
			}
			prefetches := uint64(0)
			for _, h := range tc.want {
				if h&Prefetch != 0 {
					prefetches++
				}
			}
			if st := c.Stats(); st.Prefetches != prefetches {
				t.Errorf("Stats.Prefetches %d, want %d", st.Prefetches, prefetches)
			}
		})
	}

	t.Run("a refreshed entry keeps its popularity", func(t *testing.T) {
		c, clk, req := setup(t, Options{Prefetch: 2, PrefetchWindow: 2 * time.Minute})
		c.Get(req)
		clk.Advance(90 * time.Second)
		if _, hit := c.Get(req); hit != Fresh|Prefetch {
			t.Fatalf("hit %v, want fresh+prefetch", hit)
		}
		// The prefetch brings a fresh answer; one more hit near its expiry
		// makes it due again because the two earlier hits carried over.
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, "pop.example.com. 100 IN A 192.0.2.1"), nil, nil))
		clk.Advance(90 * time.Second)
		if _, hit := c.Get(req); hit != Fresh|Prefetch {
			t.Errorf("after refresh: hit %v, want fresh+prefetch", hit)
		}
	})
}

func TestServeStaleWindow(t *testing.T) {
	s := time.Second
	tests := []struct {
		name       string
		serveStale time.Duration
		advance    time.Duration
		want       bool // an answer is returned
		wantTTL    uint32
	}{
		{"unexpired entry is served as Get would", time.Hour, 30 * s, true, 30},
		{"just expired", time.Hour, 60 * s, true, uint32(StaleAnswerTTL / s)},
		{"inside the window", time.Hour, 60*s + time.Hour - time.Millisecond, true, uint32(StaleAnswerTTL / s)},
		{"at the end of the window", time.Hour, 60*s + time.Hour, false, 0},
		{"serve-stale off", 0, 61 * s, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newCache(t, Options{ServeStale: tc.serveStale})
			req := query("www.example.com.", dns.TypeA, false)
			c.Set(req, reply(req, dns.RcodeSuccess,
				rrs(t, "www.example.com. 60 IN CNAME web.example.com.", "web.example.com. 120 IN A 192.0.2.1"),
				rrs(t, "example.com. 300 IN NS ns.example.com."), nil))
			clk.Advance(tc.advance)

			resp, hit := c.GetStale(req)
			if (resp != nil) != tc.want {
				t.Fatalf("GetStale = %v, want an answer: %v", resp, tc.want)
			}
			if resp == nil {
				return
			}
			for _, r := range append(resp.Answer, resp.Ns...) {
				if r.Header().Ttl != tc.wantTTL {
					t.Errorf("record %v: TTL %d, want %d", r, r.Header().Ttl, tc.wantTTL)
				}
			}
			if wantHit := Fresh; tc.advance >= 60*s && hit != Stale|Prefetch || tc.advance < 60*s && hit != wantHit {
				t.Errorf("hit %v", hit)
			}
			if resp.Id != req.Id || len(resp.Answer) != 2 {
				t.Errorf("stale answer %v does not answer the request", resp)
			}
			stale := uint64(0)
			if tc.advance >= 60*s {
				stale = 1
				if _, hit := c.Get(req); hit != Miss {
					t.Errorf("Get of an expired entry: hit %v, want miss", hit)
				}
			}
			if st := c.Stats(); st.StaleServed != stale {
				t.Errorf("StaleServed %d, want %d", st.StaleServed, stale)
			}
		})
	}

	t.Run("stale denial", func(t *testing.T) {
		c, clk := newCache(t, Options{ServeStale: time.Hour})
		req := query("nope.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeNameError, nil, rrs(t, fmt.Sprintf(soa, 60, 60)), nil))
		clk.Advance(2 * time.Minute)
		resp, _ := c.GetStale(req)
		if resp == nil || resp.Rcode != dns.RcodeNameError || resp.Ns[0].Header().Ttl != 30 {
			t.Errorf("GetStale = %v, want the NXDOMAIN with TTL 30", resp)
		}
	})
}

func TestUnusableRequestsMiss(t *testing.T) {
	c, _ := newCache(t, Options{ServeStale: time.Hour, Prefetch: 1})
	req := query("www.example.com.", dns.TypeA, false)
	c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, "www.example.com. 60 IN A 192.0.2.1"), nil, nil))

	notify := query("www.example.com.", dns.TypeA, false)
	notify.Opcode = dns.OpcodeNotify
	twoQ := query("www.example.com.", dns.TypeA, false)
	twoQ.Question = append(twoQ.Question, twoQ.Question[0])
	for name, r := range map[string]*dns.Msg{"nil": nil, "no question": new(dns.Msg), "NOTIFY": notify, "two questions": twoQ} {
		if resp, hit := c.Get(r); resp != nil || hit != Miss {
			t.Errorf("%s: Get = %v, %v; want miss", name, resp, hit)
		}
		if resp, _ := c.GetStale(r); resp != nil {
			t.Errorf("%s: GetStale answered", name)
		}
		c.Set(r, nil)
		c.Set(r, reply(req, dns.RcodeSuccess, nil, nil, nil))
	}
	c.Set(req, nil)
	if s, d := c.Len(); s != 1 || d != 0 {
		t.Errorf("Len = %d, %d; want the one entry", s, d)
	}
}

func TestHitString(t *testing.T) {
	for h, want := range map[Hit]string{Miss: "miss", Fresh: "fresh", Stale: "stale", Fresh | Prefetch: "fresh+prefetch"} {
		if got := h.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(h), got, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c, clk := newCache(t, Options{SuccessCap: 64, DenialCap: 64, Prefetch: 2, ServeStale: time.Minute})
	nxSOA := rr(t, fmt.Sprintf(soa, 30, 30))
	const workers, ops = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range ops {
				name := fmt.Sprintf("n%d.example.com.", r.IntN(100))
				req := query(name, dns.TypeA, r.IntN(2) == 0)
				switch r.IntN(6) {
				case 0:
					c.Set(req, reply(req, dns.RcodeSuccess, []dns.RR{&dns.A{
						Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: uint32(1 + r.IntN(60))},
						A:   []byte{192, 0, 2, byte(i)},
					}}, nil, nil))
				case 1:
					c.Set(req, reply(req, dns.RcodeNameError, nil, []dns.RR{nxSOA}, nil))
				case 2:
					if resp, _ := c.GetStale(req); resp != nil {
						resp.Answer = nil // the caller owns it
					}
				case 3:
					c.Len()
					c.Stats()
				case 4:
					clk.Advance(time.Duration(r.IntN(2000)) * time.Millisecond)
				default:
					if resp, _ := c.Get(req); resp != nil {
						for _, a := range resp.Answer {
							a.Header().Ttl = 0 // the caller owns it
						}
						resp.Id = 0
					}
				}
			}
		}()
	}
	wg.Wait()
	if s, d := c.Len(); s > 64 || d > 64 {
		t.Errorf("Len = %d, %d; want at most 64 each", s, d)
	}
}

func BenchmarkGetHit(b *testing.B) {
	c, _ := newCache(b, Options{})
	req := query("www.example.com.", dns.TypeA, true)
	c.Set(req, reply(req, dns.RcodeSuccess, rrs(b,
		"www.example.com. 300 IN CNAME web.example.com.",
		"web.example.com. 300 IN A 192.0.2.1",
		"web.example.com. 300 IN A 192.0.2.2"), nil, nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, hit := c.Get(req); hit != Fresh {
			b.Fatalf("hit %v", hit)
		}
	}
}

func TestAnswerMustReachTheQuestionTypeThroughTheCNAMEChain(t *testing.T) {
	tests := []struct {
		name   string
		qtype  uint16
		answer []string
		want   bool
	}{
		{"direct record", dns.TypeA, []string{"q.example. 60 IN A 192.0.2.1"}, true},
		{"chain ending in the type", dns.TypeA, []string{
			"q.example. 60 IN CNAME b.example.", "b.example. 60 IN CNAME c.example.", "c.example. 60 IN A 192.0.2.1"}, true},
		{"chain in reverse order", dns.TypeA, []string{
			"c.example. 60 IN A 192.0.2.1", "b.example. 60 IN CNAME c.example.", "Q.EXAMPLE. 60 IN CNAME B.example."}, true},
		{"chain ending elsewhere", dns.TypeA, []string{"q.example. 60 IN CNAME b.example.", "b.example. 60 IN AAAA 2001:db8::1"}, false},
		{"record at an unrelated name", dns.TypeA, []string{"other.example. 60 IN A 192.0.2.1"}, false},
		{"looping chain", dns.TypeA, []string{"q.example. 60 IN CNAME b.example.", "b.example. 60 IN CNAME q.example."}, false},
		{"forked chain", dns.TypeA, []string{
			"q.example. 60 IN CNAME b.example.", "q.example. 60 IN CNAME c.example.", "c.example. 60 IN A 192.0.2.1"}, false},
		{"CNAME question", dns.TypeCNAME, []string{"q.example. 60 IN CNAME b.example."}, true},
		{"ANY question", dns.TypeANY, []string{"q.example. 60 IN TXT \"x\""}, true},
		{"ANY question, other name", dns.TypeANY, []string{"b.example. 60 IN TXT \"x\""}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := dns.Question{Name: "q.example.", Qtype: tc.qtype, Qclass: dns.ClassINET}
			if got := answers(rrs(t, tc.answer...), q); got != tc.want {
				t.Errorf("answers = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTTLsWithTheTopBitSetCountAsZero(t *testing.T) {
	c, _ := newCache(t, Options{})
	req := query("big.example.com.", dns.TypeA, false)
	c.Set(req, reply(req, dns.RcodeSuccess, []dns.RR{&dns.A{
		Hdr: dns.RR_Header{Name: "big.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1 << 31},
		A:   []byte{192, 0, 2, 1},
	}}, nil, nil))
	resp, hit := c.Get(req)
	if hit != Fresh || resp.Answer[0].Header().Ttl != 0 {
		t.Errorf("hit %v, resp %v; want the record served with TTL 0", hit, resp)
	}
}

func TestHitsCountTheDenialCachesPartApart(t *testing.T) {
	c, _ := newCache(t, Options{})
	ok := query("www.example.com.", dns.TypeA, false)
	c.Set(ok, reply(ok, dns.RcodeSuccess, rrs(t, "www.example.com. 60 IN A 192.0.2.1"), nil, nil))
	nx := query("nx.example.com.", dns.TypeA, false)
	c.Set(nx, reply(nx, dns.RcodeNameError, nil, rrs(t, fmt.Sprintf(soa, 60, 60)), nil))
	c.Get(ok)
	c.Get(nx)
	c.Get(nx)
	if st := c.Stats(); st.Hits != 3 || st.DenialHits != 2 {
		t.Errorf("hits %d, denial hits %d; want 3 and 2", st.Hits, st.DenialHits)
	}
}
