package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/plugin/forward"
)

// upstream plays the forward handler: it answers with what reply says
// (st.By = "forward"), or fails as forward does when the upstream cannot be
// reached (st.Err set, SERVFAIL).
type upstream struct {
	calls atomic.Int32
	delay atomic.Int64 // nanoseconds
	mu    sync.Mutex
	reply func(r *dns.Msg) (*dns.Msg, error)
}

func (u *upstream) Name() string { return forward.Name }

func (u *upstream) set(reply func(r *dns.Msg) (*dns.Msg, error)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reply = reply
}

func (u *upstream) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	u.calls.Add(1)
	time.Sleep(time.Duration(u.delay.Load()))
	u.mu.Lock()
	reply := u.reply
	u.mu.Unlock()
	resp, err := reply(st.Req)
	if err != nil {
		st.Err = err
		return st.Error(forward.Name, dns.RcodeServerFailure)
	}
	st.By = forward.Name
	return forward.UpstreamReply(st.Reply(), resp)
}

// answer replies with rcode and the given records; an NXDOMAIN or NODATA
// gets an SOA with TTL and MINIMUM 60.
func answer(rcode int, records ...string) func(r *dns.Msg) (*dns.Msg, error) {
	return func(r *dns.Msg) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		m.RecursionAvailable = true
		for _, s := range records {
			rr, err := dns.NewRR(s)
			if err != nil {
				return nil, err
			}
			m.Answer = append(m.Answer, rr)
		}
		if rcode == dns.RcodeNameError || rcode == dns.RcodeSuccess && len(records) == 0 {
			soa, _ := dns.NewRR("example.org. 60 IN SOA ns.example.org. h.example.org. 1 7200 3600 1209600 60")
			m.Ns = append(m.Ns, soa)
		}
		return m, nil
	}
}

func unreachable(*dns.Msg) (*dns.Msg, error) { return nil, errors.New("i/o timeout") }

type clock struct {
	mu  sync.Mutex
	now time.Time
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

// setup returns a handler for "." over a cache with options o, asking up.
func setup(o cache.Options, up *upstream) (*Handler, *clock) {
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	o.Now = clk.Now
	return &Handler{Zones: plugin.Zones{"."}, Cache: cache.New(o), PrefetchTimeout: time.Second, Next: up}, clk
}

// ask sends a query for name and type through h.
func ask(h *Handler, name string, qtype uint16) (*dns.Msg, *plugin.State) {
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	r.SetEdns0(1232, false)
	st := plugin.NewState(r, ".", nil, "udp")
	return h.ServeDNS(context.Background(), st), st
}

func TestDisabledZonesGoUpstreamEveryTime(t *testing.T) {
	tests := []struct {
		name       string
		opts       cache.Options
		qname      string
		qtype      uint16
		wantCalls  int32
		wantRcode  int
		wantAnswer bool
	}{
		{"disable success: answers in the zone are not kept", cache.Options{NoSuccess: []string{"example.org."}},
			"www.example.org.", dns.TypeA, 3, dns.RcodeSuccess, true},
		{"disable success: denials in the zone are kept", cache.Options{NoSuccess: []string{"example.org."}},
			"www.example.org.", dns.TypeAAAA, 1, dns.RcodeSuccess, false},
		{"disable success: answers outside the zone are kept", cache.Options{NoSuccess: []string{"example.org."}},
			"www.example.com.", dns.TypeA, 1, dns.RcodeSuccess, true},
		{"disable denial: denials in the zone are not kept", cache.Options{NoDenial: []string{"example.org."}},
			"nope.example.org.", dns.TypeA, 3, dns.RcodeNameError, false},
		{"disable denial: answers in the zone are kept", cache.Options{NoDenial: []string{"example.org."}},
			"www.example.org.", dns.TypeA, 1, dns.RcodeSuccess, true},
		{"disable denial: SERVFAIL in the zone is not kept", cache.Options{NoDenial: []string{"example.org."}},
			"broken.example.org.", dns.TypeA, 3, dns.RcodeServerFailure, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{}
			up.set(func(r *dns.Msg) (*dns.Msg, error) {
				q := r.Question[0]
				switch {
				case q.Name == "nope.example.org.":
					return answer(dns.RcodeNameError)(r)
				case q.Name == "broken.example.org.":
					return answer(dns.RcodeServerFailure)(r)
				case q.Qtype == dns.TypeA:
					return answer(dns.RcodeSuccess, q.Name+" 300 IN A 192.0.2.1")(r)
				}
				return answer(dns.RcodeSuccess)(r)
			})
			h, _ := setup(tc.opts, up)
			for range 3 {
				m, _ := ask(h, tc.qname, tc.qtype)
				if m.Rcode != tc.wantRcode || (len(m.Answer) > 0) != tc.wantAnswer {
					t.Fatalf("reply %v, want rcode %s with answer %v", m, dns.RcodeToString[tc.wantRcode], tc.wantAnswer)
				}
			}
			if n := up.calls.Load(); n != tc.wantCalls {
				t.Errorf("upstream asked %d times, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestUpstreamServFailIsCachedButForwardsOwnFailureIsNot(t *testing.T) {
	t.Run("an upstream SERVFAIL is answered from the cache for 5 s", func(t *testing.T) {
		up := &upstream{}
		up.set(answer(dns.RcodeServerFailure))
		h, clk := setup(cache.Options{}, up)
		for range 3 {
			if m, _ := ask(h, "www.example.org.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
				t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
			}
		}
		if n := up.calls.Load(); n != 1 {
			t.Errorf("upstream asked %d times, want 1", n)
		}
		clk.Advance(5 * time.Second)
		up.set(answer(dns.RcodeSuccess, "www.example.org. 300 IN A 192.0.2.1"))
		if m, st := ask(h, "www.example.org.", dns.TypeA); m.Rcode != dns.RcodeSuccess || st.By != forward.Name {
			t.Errorf("after 5 s: %v by %q, want the upstream's answer", m, st.By)
		}
	})
	t.Run("servfail 0 keeps none", func(t *testing.T) {
		up := &upstream{}
		up.set(answer(dns.RcodeServerFailure))
		h, _ := setup(cache.Options{ServFailTTL: -1}, up)
		ask(h, "www.example.org.", dns.TypeA)
		ask(h, "www.example.org.", dns.TypeA)
		if n := up.calls.Load(); n != 2 {
			t.Errorf("upstream asked %d times, want 2", n)
		}
	})
	t.Run("an unreachable upstream is asked again at once", func(t *testing.T) {
		up := &upstream{}
		up.set(unreachable)
		h, _ := setup(cache.Options{}, up)
		for range 2 {
			m, st := ask(h, "www.example.org.", dns.TypeA)
			if m.Rcode != dns.RcodeServerFailure || st.Err == nil {
				t.Fatalf("reply %v err %v, want forward's SERVFAIL with its error", m, st.Err)
			}
		}
		if n := up.calls.Load(); n != 2 {
			t.Errorf("upstream asked %d times, want 2: forward's own failure is not cached", n)
		}
	})
}

func TestTheFirstAnswerHasTheCachedTTL(t *testing.T) {
	up := &upstream{}
	up.set(answer(dns.RcodeSuccess, "www.example.org. 300 IN CNAME web.example.org.", "web.example.org. 3600 IN A 192.0.2.1"))
	h, clk := setup(cache.Options{SuccessTTL: 30 * time.Second}, up)
	first, st := ask(h, "www.example.org.", dns.TypeA)
	if st.By != forward.Name {
		t.Fatalf("first answer by %q", st.By)
	}
	for _, rr := range first.Answer {
		if rr.Header().Ttl != 30 {
			t.Errorf("first answer %v: TTL %d, want 30 (the cache's max TTL)", rr, rr.Header().Ttl)
		}
	}
	if first.IsEdns0() == nil || first.Id == 0 && first.Question[0].Name != "www.example.org." {
		t.Errorf("first answer lost its OPT or question: %v", first)
	}
	clk.Advance(10 * time.Second)
	later, st := ask(h, "www.example.org.", dns.TypeA)
	if st.By != Name {
		t.Fatalf("second answer by %q, want cache", st.By)
	}
	for _, rr := range later.Answer {
		if rr.Header().Ttl != 20 {
			t.Errorf("cached answer %v: TTL %d, want 20", rr, rr.Header().Ttl)
		}
	}
}

func TestKeepTTLServesTheFirstTTL(t *testing.T) {
	up := &upstream{}
	up.set(answer(dns.RcodeSuccess, "www.example.org. 60 IN A 192.0.2.1"))
	h, clk := setup(cache.Options{KeepTTL: true}, up)
	ask(h, "www.example.org.", dns.TypeA)
	clk.Advance(45 * time.Second)
	if m, st := ask(h, "www.example.org.", dns.TypeA); st.By != Name || m.Answer[0].Header().Ttl != 60 {
		t.Errorf("after 45 s: %v by %q, want TTL 60 from the cache", m, st.By)
	}
}

func TestServeStale(t *testing.T) {
	good := answer(dns.RcodeSuccess, "www.example.org. 60 IN A 192.0.2.1")
	newer := answer(dns.RcodeSuccess, "www.example.org. 60 IN A 192.0.2.2")
	addr := func(m *dns.Msg) string {
		if len(m.Answer) == 0 {
			return ""
		}
		return m.Answer[0].(*dns.A).A.String()
	}
	opts := cache.Options{ServeStale: time.Hour}

	t.Run("immediate serves the expired entry at once and refreshes it behind", func(t *testing.T) {
		up := &upstream{}
		up.set(good)
		h, clk := setup(opts, up)
		ask(h, "www.example.org.", dns.TypeA)
		clk.Advance(2 * time.Minute)
		up.set(newer)
		m, st := ask(h, "www.example.org.", dns.TypeA)
		if st.By != Name || addr(m) != "192.0.2.1" || m.Answer[0].Header().Ttl != 30 {
			t.Fatalf("expired entry: %v by %q, want the stale answer with TTL 30", m, st.By)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			m, _ := ask(h, "www.example.org.", dns.TypeA)
			if addr(m) == "192.0.2.2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the background refresh never replaced the stale entry")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("immediate refreshes once for concurrent queries", func(t *testing.T) {
		up := &upstream{}
		up.delay.Store(int64(50 * time.Millisecond))
		up.set(good)
		h, clk := setup(opts, up)
		ask(h, "www.example.org.", dns.TypeA)
		clk.Advance(2 * time.Minute)
		up.set(unreachable)
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if m, _ := ask(h, "www.example.org.", dns.TypeA); addr(m) != "192.0.2.1" {
					t.Errorf("concurrent query got %v", m)
				}
			}()
		}
		wg.Wait()
		time.Sleep(100 * time.Millisecond)
		if n := up.calls.Load(); n != 2 {
			t.Errorf("upstream asked %d times, want 2 (the first query and one refresh)", n)
		}
	})
	t.Run("a failed immediate refresh keeps the stale entry", func(t *testing.T) {
		up := &upstream{}
		up.set(good)
		h, clk := setup(opts, up)
		ask(h, "www.example.org.", dns.TypeA)
		clk.Advance(2 * time.Minute)
		up.set(answer(dns.RcodeServerFailure))
		ask(h, "www.example.org.", dns.TypeA)
		waitCalls(t, up, 2)
		time.Sleep(20 * time.Millisecond)
		if m, st := ask(h, "www.example.org.", dns.TypeA); st.By != Name || addr(m) != "192.0.2.1" {
			t.Errorf("after a SERVFAIL refresh: %v by %q, want the stale answer", m, st.By)
		}
	})

	verify := []struct {
		name     string
		reply    func(*dns.Msg) (*dns.Msg, error)
		wantBy   string
		wantAddr string
		wantTTL  uint32
	}{
		{"verify: a fresh answer wins", newer, forward.Name, "192.0.2.2", 60},
		{"verify: an unreachable upstream gets the stale answer", unreachable, Name, "192.0.2.1", 30},
		{"verify: an upstream SERVFAIL gets the stale answer", answer(dns.RcodeServerFailure), Name, "192.0.2.1", 30},
		{"verify: an upstream REFUSED gets the stale answer", answer(dns.RcodeRefused), Name, "192.0.2.1", 30},
		{"verify: an NXDOMAIN replaces the entry", answer(dns.RcodeNameError), forward.Name, "", 0},
	}
	for _, tc := range verify {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{}
			up.set(good)
			h, clk := setup(opts, up)
			h.StaleVerify = true
			ask(h, "www.example.org.", dns.TypeA)
			clk.Advance(2 * time.Minute)
			up.set(tc.reply)
			m, st := ask(h, "www.example.org.", dns.TypeA)
			if st.By != tc.wantBy || addr(m) != tc.wantAddr || tc.wantAddr != "" && m.Answer[0].Header().Ttl != tc.wantTTL {
				t.Errorf("reply %v by %q, want %s from %q with TTL %d", m, st.By, tc.wantAddr, tc.wantBy, tc.wantTTL)
			}
			if up.calls.Load() != 2 {
				t.Errorf("upstream asked %d times, want 2: verify asks before serving stale", up.calls.Load())
			}
		})
	}

	t.Run("verify with a timeout serves stale and keeps the late answer", func(t *testing.T) {
		up := &upstream{}
		up.set(good)
		h, clk := setup(opts, up)
		h.StaleVerify, h.VerifyTimeout = true, 20*time.Millisecond
		ask(h, "www.example.org.", dns.TypeA)
		clk.Advance(2 * time.Minute)
		up.delay.Store(int64(200 * time.Millisecond))
		up.set(newer)
		start := time.Now()
		m, st := ask(h, "www.example.org.", dns.TypeA)
		if st.By != Name || addr(m) != "192.0.2.1" || time.Since(start) > 150*time.Millisecond {
			t.Fatalf("slow upstream: %v by %q after %v, want the stale answer within the timeout", m, st.By, time.Since(start))
		}
		up.delay.Store(0)
		time.Sleep(300 * time.Millisecond)
		if m, st := ask(h, "www.example.org.", dns.TypeA); st.By != Name || addr(m) != "192.0.2.2" {
			t.Errorf("later: %v by %q, want the late answer from the cache", m, st.By)
		}
	})
	t.Run("verify with a timeout waits when there is nothing stale", func(t *testing.T) {
		up := &upstream{}
		up.delay.Store(int64(60 * time.Millisecond))
		up.set(good)
		h, _ := setup(opts, up)
		h.StaleVerify, h.VerifyTimeout = true, 10*time.Millisecond
		if m, st := ask(h, "www.example.org.", dns.TypeA); st.By != forward.Name || addr(m) != "192.0.2.1" {
			t.Errorf("reply %v by %q, want the upstream's", m, st.By)
		}
	})
}

func waitCalls(t *testing.T, up *upstream, n int32) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for up.calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("upstream asked %d times, want %d", up.calls.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// memory plays a handler answering from memory (the cluster zone).
type memory struct{ calls atomic.Int32 }

func (m *memory) Name() string { return "kubernetes" }

func (m *memory) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	m.calls.Add(1)
	r := st.Reply()
	rr, _ := dns.NewRR(st.Name + " 5 IN A 10.96.0.10")
	r.Answer = append(r.Answer, rr)
	st.By = "kubernetes"
	return r
}

func TestAnswersNotFromForwardAreNotKept(t *testing.T) {
	mem := &memory{}
	h := &Handler{Zones: plugin.Zones{"."}, Cache: cache.New(cache.Options{}), Next: mem}
	for range 3 {
		if _, st := ask(h, "web.shop.svc.cluster.local.", dns.TypeA); st.By != "kubernetes" {
			t.Fatalf("answered by %q", st.By)
		}
	}
	if n := mem.calls.Load(); n != 3 {
		t.Errorf("the cluster handler answered %d times, want 3", n)
	}
}
