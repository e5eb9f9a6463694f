package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestServFailIsKeptForTheServFailTTL(t *testing.T) {
	s := time.Second
	tests := []struct {
		name     string
		opts     Options
		rcode    int
		kept     time.Duration // how long Get answers it; 0 = not kept
		answered bool
	}{
		{"SERVFAIL kept 5 s by default", Options{}, dns.RcodeServerFailure, 5 * s, false},
		{"NOTIMP kept like SERVFAIL", Options{}, dns.RcodeNotImplemented, 5 * s, false},
		{"servfail 30s", Options{ServFailTTL: 30 * s}, dns.RcodeServerFailure, 30 * s, false},
		{"more than 5 minutes means 5 minutes", Options{ServFailTTL: time.Hour}, dns.RcodeServerFailure, 5 * time.Minute, false},
		{"servfail 0 keeps nothing", Options{ServFailTTL: -1}, dns.RcodeServerFailure, 0, false},
		{"the servfail TTL holds whatever the records say", Options{}, dns.RcodeServerFailure, 5 * s, true},
		{"a denial zone exclusion covers SERVFAIL", Options{NoDenial: []string{"example.com."}}, dns.RcodeServerFailure, 0, false},
		{"a success zone exclusion does not", Options{NoSuccess: []string{"example.com."}}, dns.RcodeServerFailure, 5 * s, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newCache(t, tc.opts)
			req := query("www.example.com.", dns.TypeA, false)
			var answer []dns.RR
			if tc.answered {
				answer = rrs(t, "www.example.com. 3600 IN A 192.0.2.1")
			}
			first := c.Set(req, reply(req, tc.rcode, answer, nil, nil))
			if tc.answered && first.Answer[0].Header().Ttl != uint32(tc.kept/s) {
				t.Errorf("first answer TTL %d, want %d", first.Answer[0].Header().Ttl, tc.kept/s)
			}
			resp, hit := c.Get(req)
			if tc.kept == 0 {
				if hit != Miss {
					t.Fatalf("Get = %v, want miss", hit)
				}
				return
			}
			if hit != Fresh || resp.Rcode != tc.rcode {
				t.Fatalf("Get = %v %v, want the kept rcode", hit, resp)
			}
			if _, d := c.Len(); d != 1 {
				t.Errorf("denial cache holds %d entries, want the SERVFAIL", d)
			}
			clk.Advance(tc.kept - time.Millisecond)
			if _, hit := c.Get(req); hit != Fresh {
				t.Errorf("just before %s: %v, want fresh", tc.kept, hit)
			}
			clk.Advance(time.Millisecond)
			if _, hit := c.Get(req); hit != Miss {
				t.Errorf("after %s: %v, want miss", tc.kept, hit)
			}
		})
	}
}

func TestServFailNeverHidesAnAnswer(t *testing.T) {
	a := "www.example.com. 60 IN A 192.0.2.1"
	t.Run("a fresh answer is served over a later SERVFAIL", func(t *testing.T) {
		c, _ := newCache(t, Options{})
		req := query("www.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil))
		c.Set(req, reply(req, dns.RcodeServerFailure, nil, nil, nil)) // a failed prefetch
		if resp, hit := c.Get(req); hit != Fresh || resp.Rcode != dns.RcodeSuccess {
			t.Errorf("Get = %v %v, want the answer", hit, resp)
		}
	})
	t.Run("an answer within the serve-stale window makes the SERVFAIL a miss", func(t *testing.T) {
		c, clk := newCache(t, Options{ServeStale: time.Hour})
		req := query("www.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil))
		clk.Advance(2 * time.Minute)
		c.Set(req, reply(req, dns.RcodeServerFailure, nil, nil, nil))
		if _, hit := c.Get(req); hit != Miss {
			t.Errorf("Get = %v, want a miss so the stale answer can be served", hit)
		}
		resp, hit := c.GetStale(req)
		if hit&^Prefetch != Stale || resp.Rcode != dns.RcodeSuccess || resp.Answer[0].Header().Ttl != 30 {
			t.Errorf("GetStale = %v %v, want the stale answer", hit, resp)
		}
	})
	t.Run("without serve-stale the SERVFAIL is served", func(t *testing.T) {
		c, clk := newCache(t, Options{})
		req := query("www.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil))
		clk.Advance(2 * time.Minute)
		c.Set(req, reply(req, dns.RcodeServerFailure, nil, nil, nil))
		if resp, hit := c.Get(req); hit != Fresh || resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("Get = %v %v, want the SERVFAIL", hit, resp)
		}
	})
	t.Run("a SERVFAIL is never served stale", func(t *testing.T) {
		c, clk := newCache(t, Options{ServeStale: time.Hour})
		req := query("www.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeServerFailure, nil, nil, nil))
		clk.Advance(10 * time.Second)
		if resp, hit := c.GetStale(req); resp != nil || hit != Miss {
			t.Errorf("GetStale = %v %v, want nothing", hit, resp)
		}
	})
	t.Run("an answer replaces the SERVFAIL", func(t *testing.T) {
		c, _ := newCache(t, Options{})
		req := query("www.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeServerFailure, nil, nil, nil))
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil))
		if s, d := c.Len(); s != 1 || d != 0 {
			t.Errorf("Len = %d, %d; want only the answer", s, d)
		}
	})
}

func TestKeepTTLServesTheStoredTTLs(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keepttl ", keep), func(t *testing.T) {
			c, clk := newCache(t, Options{KeepTTL: keep})
			req := query("www.example.com.", dns.TypeA, false)
			c.Set(req, reply(req, dns.RcodeSuccess,
				rrs(t, "www.example.com. 60 IN CNAME web.example.com.", "web.example.com. 7200 IN A 192.0.2.1"), nil, nil))
			clk.Advance(25 * time.Second)
			resp, hit := c.Get(req)
			want := []uint32{35, 35}
			if keep {
				want = []uint32{60, 60}
			}
			if hit != Fresh || !equalTTLs(ttls(resp.Answer), want) {
				t.Errorf("after 25 s: %v TTLs %v, want %v", hit, ttls(resp.Answer), want)
			}
			clk.Advance(35 * time.Second)
			if _, hit := c.Get(req); hit != Miss {
				t.Errorf("after 60 s: %v, want miss: the entry expires all the same", hit)
			}
		})
	}
}

func TestTheFirstAnswerCarriesTheCachedTTLs(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		opts   Options
		rcode  int
		answer []string
		ns     []string
		want   []uint32 // TTLs of answer then authority, first and at once from the cache
	}{
		{"capped at the success TTL", Options{SuccessTTL: 30 * s}, dns.RcodeSuccess,
			[]string{"www.example.com. 300 IN A 192.0.2.1"}, nil, []uint32{30}},
		{"within the caps unchanged", Options{SuccessTTL: 30 * s}, dns.RcodeSuccess,
			[]string{"www.example.com. 20 IN A 192.0.2.1"}, nil, []uint32{20}},
		{"the entry lives for the smallest TTL and no record outlives it", Options{}, dns.RcodeSuccess,
			[]string{"www.example.com. 300 IN CNAME web.example.com.", "web.example.com. 60 IN A 192.0.2.1"}, nil, []uint32{60, 60}},
		{"the floor does not raise a record", Options{}, dns.RcodeSuccess,
			[]string{"www.example.com. 2 IN A 192.0.2.1"}, nil, []uint32{2}},
		{"a denial is capped at the denial TTL", Options{DenialTTL: 10 * s}, dns.RcodeNameError,
			nil, []string{fmt.Sprintf(soa, 3600, 3600)}, []uint32{10}},
		{"a denial is capped at its negative TTL", Options{}, dns.RcodeNameError,
			nil, []string{fmt.Sprintf(soa, 3600, 60)}, []uint32{60}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCache(t, tc.opts)
			req := query("www.example.com.", dns.TypeA, true)
			up := reply(req, tc.rcode, rrs(t, tc.answer...), rrs(t, tc.ns...), nil)
			first := c.Set(req, up)
			if got := append(ttls(first.Answer), ttls(first.Ns)...); !equalTTLs(got, tc.want) {
				t.Errorf("first answer TTLs %v, want %v", got, tc.want)
			}
			if first.IsEdns0() == nil {
				t.Error("the first answer lost its OPT record")
			}
			cached, hit := c.Get(req)
			if got := append(ttls(cached.Answer), ttls(cached.Ns)...); hit != Fresh || !equalTTLs(got, tc.want) {
				t.Errorf("cached answer %v TTLs %v, want %v", hit, got, tc.want)
			}
			for _, r := range append(up.Answer, up.Ns...) {
				if r.Header().Ttl != 300 && r.Header().Ttl != 60 && r.Header().Ttl != 20 && r.Header().Ttl != 2 && r.Header().Ttl != 3600 {
					t.Errorf("the upstream's record %v was changed", r)
				}
			}
		})
	}
	t.Run("an uncacheable answer is handed on as it is", func(t *testing.T) {
		c, _ := newCache(t, Options{SuccessTTL: 30 * s})
		req := query("www.example.com.", dns.TypeA, false)
		up := reply(req, dns.RcodeRefused, nil, nil, nil)
		if got := c.Set(req, up); got != up {
			t.Errorf("Set returned %v, want the upstream's message", got)
		}
	})
}

func TestDisabledZonesAreNotKeptButStillCapped(t *testing.T) {
	tests := []struct {
		name                      string
		noSuccess, noDenial       []string
		qname                     string
		wantSuccessKept, wantDeny bool
	}{
		{"disable success in the zone", []string{"example.com."}, nil, "www.example.com.", false, true},
		{"disable denial in the zone", nil, []string{"example.com."}, "www.example.com.", true, false},
		{"disable both everywhere", []string{"."}, []string{"."}, "www.example.com.", false, false},
		{"names outside the zone are kept", []string{"example.org."}, []string{"example.org."}, "www.example.com.", true, true},
		{"a name sharing a suffix is not in the zone", []string{"ample.com."}, []string{"ample.com."}, "www.example.com.", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCache(t, Options{SuccessTTL: 30 * time.Second, NoSuccess: tc.noSuccess, NoDenial: tc.noDenial})
			ok := query(tc.qname, dns.TypeA, false)
			first := c.Set(ok, reply(ok, dns.RcodeSuccess, rrs(t, tc.qname+" 300 IN A 192.0.2.1"), nil, nil))
			if ttl := first.Answer[0].Header().Ttl; ttl != 30 {
				t.Errorf("first answer TTL %d, want 30 whether kept or not", ttl)
			}
			nx := query(tc.qname, dns.TypeAAAA, false)
			c.Set(nx, reply(nx, dns.RcodeSuccess, nil, rrs(t, fmt.Sprintf(soa, 60, 60)), nil))
			if _, hit := c.Get(ok); (hit == Fresh) != tc.wantSuccessKept {
				t.Errorf("answer: %v, want kept %v", hit, tc.wantSuccessKept)
			}
			if _, hit := c.Get(nx); (hit == Fresh) != tc.wantDeny {
				t.Errorf("denial: %v, want kept %v", hit, tc.wantDeny)
			}
		})
	}
}

func TestStaleAnswers(t *testing.T) {
	a := "www.example.com. 60 IN A 192.0.2.1"
	t.Run("stale TTL", func(t *testing.T) {
		for _, tc := range []struct {
			opt  time.Duration
			want uint32
		}{{0, 30}, {-1, 0}, {5 * time.Second, 5}} {
			c, clk := newCache(t, Options{ServeStale: time.Hour, StaleTTL: tc.opt})
			req := query("www.example.com.", dns.TypeA, false)
			c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil))
			clk.Advance(2 * time.Minute)
			if resp, _ := c.GetStale(req); resp == nil || resp.Answer[0].Header().Ttl != tc.want {
				t.Errorf("StaleTTL %v: %v, want TTL %d", tc.opt, resp, tc.want)
			}
		}
	})
	t.Run("one caller at a time is told to refresh", func(t *testing.T) {
		c, clk := newCache(t, Options{ServeStale: time.Hour, StaleRecheck: 30 * time.Second})
		req := query("www.example.com.", dns.TypeA, false)
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil))
		clk.Advance(2 * time.Minute)
		steps := []struct {
			advance time.Duration
			want    Hit
		}{{0, Stale | Prefetch}, {0, Stale}, {29 * time.Second, Stale}, {time.Second, Stale | Prefetch}}
		for i, st := range steps {
			clk.Advance(st.advance)
			if _, hit := c.GetStale(req); hit != st.want {
				t.Errorf("step %d: %v, want %v", i, hit, st.want)
			}
		}
		c.Set(req, reply(req, dns.RcodeSuccess, rrs(t, a), nil, nil))
		if _, hit := c.GetStale(req); hit != Fresh {
			t.Errorf("after a refresh: %v, want fresh", hit)
		}
	})
}
