package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestForwardsAnswerWithClientIDAndRandomWireIDs(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1"))
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}})
	const n = 20
	for i := range n {
		req := query(fmt.Sprintf("host%d.example.", i), dns.TypeA)
		req.Id = 4242
		m, err := f.Exchange(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if m.Id != 4242 {
			t.Errorf("reply ID %d, want the client's 4242", m.Id)
		}
		if got := firstA(m); got != "192.0.2.1" {
			t.Errorf("answer %q, want 192.0.2.1", got)
		}
		if !m.Response || m.Question[0] != req.Question[0] {
			t.Errorf("reply header/question wrong: %v", m)
		}
	}
	ids := up.wireIDs()
	if len(ids) != n {
		t.Fatalf("upstream saw %d queries, want %d", len(ids), n)
	}
	distinct := map[uint16]bool{}
	for _, id := range ids {
		if id == 4242 {
			t.Errorf("the client's ID went on the wire")
		}
		distinct[id] = true
	}
	if len(distinct) < n-2 { // 20 draws from 65536: a collision or two at most
		t.Errorf("wire IDs not random: %v", ids)
	}
	st := f.Upstreams()
	if len(st) != 1 || st[0].Addr != up.Addr || st[0].Requests != n || st[0].Failures != 0 || !st[0].Healthy || st[0].Latency <= 0 {
		t.Errorf("Upstreams() = %+v", st)
	}
}

func TestReplyPreservesClientQuestionCase(t *testing.T) {
	up := startUpstream(t, func(_ *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		m := replyA(r, "192.0.2.1")
		m.Question[0].Name = strings.ToLower(m.Question[0].Name) // upstream lower-cases
		w.WriteMsg(m)
	})
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}})
	req := query("WwW.ExAmPlE.", dns.TypeA)
	m, err := f.Exchange(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if m.Question[0].Name != "WwW.ExAmPlE." {
		t.Errorf("question %q, want the client's case", m.Question[0].Name)
	}
}

func TestEDNS(t *testing.T) {
	var mu sync.Mutex
	var seen []*dns.OPT
	up := startUpstream(t, func(_ *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		if !isProbe(r) {
			mu.Lock()
			seen = append(seen, r.IsEdns0())
			mu.Unlock()
		}
		m := replyA(r, "192.0.2.1")
		if o := m.IsEdns0(); o != nil {
			o.SetUDPSize(4096)
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: "hi"})
		}
		w.WriteMsg(m)
	})
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}})

	// No OPT from the client: one upstream, none in the reply.
	m, err := f.Exchange(context.Background(), query("plain.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if m.IsEdns0() != nil {
		t.Errorf("reply to a query without EDNS has an OPT: %v", m)
	}
	// An OPT with DO and a cookie: DO goes upstream, the cookie does not,
	// and the reply's OPT offers our buffer and keeps the upstream's EDE.
	req := query("edns.example.", dns.TypeA)
	req.SetEdns0(4096, true)
	o := req.IsEdns0()
	o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	m, err = f.Exchange(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ro := m.IsEdns0()
	if ro == nil || ro.UDPSize() != udpSize || !ro.Do() || len(ro.Option) != 1 || ro.Option[0].Option() != dns.EDNS0EDE {
		t.Errorf("reply OPT = %v", ro)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("upstream saw %d queries", len(seen))
	}
	for i, o := range seen {
		if o == nil || o.UDPSize() != udpSize || len(o.Option) != 0 || o.Do() != (i == 1) {
			t.Errorf("query %d upstream OPT = %v", i, o)
		}
	}
}

func TestSlowUpstreamFailsWithinTimeout(t *testing.T) {
	up := startUpstream(t, func(u *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		if isProbe(r) {
			w.WriteMsg(replyA(r, ""))
			return
		}
		select {
		case <-time.After(3 * time.Second):
			w.WriteMsg(replyA(r, "192.0.2.1"))
		case <-u.done:
		}
	})
	const timeout = 300 * time.Millisecond
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, Timeout: timeout})
	start := time.Now()
	_, err := f.Exchange(context.Background(), query("slow.example.", dns.TypeA))
	d := time.Since(start)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if d < timeout || d > timeout+500*time.Millisecond {
		t.Errorf("failed after %v, want about %v", d, timeout)
	}
	// It was asked again halfway, being the only upstream.
	if n := up.queries.Load(); n != 2 {
		t.Errorf("upstream saw %d queries, want 2", n)
	}
	if !strings.Contains(err.Error(), up.Addr) {
		t.Errorf("error %q does not name the upstream", err)
	}
}

func TestDroppingUpstreamFailsWithinTimeout(t *testing.T) {
	up := startUpstream(t, drop)
	const timeout = 200 * time.Millisecond
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, Timeout: timeout})
	start := time.Now()
	_, err := f.Exchange(context.Background(), query("dropped.example.", dns.TypeA))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > timeout+500*time.Millisecond {
		t.Errorf("failed after %v, want about %v", d, timeout)
	}
	if st := f.Upstreams()[0]; st.Failures == 0 {
		t.Errorf("failure not counted: %+v", st)
	}
}

func TestDroppingUpstreamFailsOverToNext(t *testing.T) {
	bad := startUpstream(t, drop)
	good := startUpstream(t, answerA("192.0.2.7"))
	f := newForwarder(t, Options{Upstreams: []string{bad.Addr, good.Addr}, Policy: "sequential", Timeout: 2 * time.Second})
	start := time.Now()
	m, err := f.Exchange(context.Background(), query("failover.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if firstA(m) != "192.0.2.7" {
		t.Errorf("answer %v", m)
	}
	// The first upstream has half the time to itself, then the second is
	// asked.
	if d := time.Since(start); d < time.Second || d > 1800*time.Millisecond {
		t.Errorf("failover after %v, want after 1s and well before the 2s timeout", d)
	}
}

func TestRefusedPortFailsOverAtOnce(t *testing.T) {
	closed := "127.0.0.1:" + freePort(t)
	good := startUpstream(t, answerA("192.0.2.8"))
	f := newForwarder(t, Options{Upstreams: []string{closed, good.Addr}, Policy: "sequential", Timeout: 2 * time.Second})
	start := time.Now()
	m, err := f.Exchange(context.Background(), query("refused.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if firstA(m) != "192.0.2.8" {
		t.Errorf("answer %v", m)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %v: a refused port should fail over at once, not after the stagger", d)
	}
}

// misbehave answers each query with bad replies, then, when right is set,
// with the right one.
func misbehave(bad func(r *dns.Msg) []byte, right bool) func(*testUpstream, dns.ResponseWriter, *dns.Msg) {
	return func(_ *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		if isProbe(r) {
			w.WriteMsg(replyA(r, ""))
			return
		}
		w.Write(bad(r))
		if right {
			w.WriteMsg(replyA(r, "192.0.2.99"))
		}
	}
}

func packed(m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func TestBadRepliesAreIgnored(t *testing.T) {
	cases := map[string]func(r *dns.Msg) []byte{
		"wrong question name": func(r *dns.Msg) []byte {
			m := replyA(r, "198.51.100.66")
			m.Question[0].Name = "evil.example."
			m.Answer[0].Header().Name = "evil.example."
			return packed(m)
		},
		"wrong question type": func(r *dns.Msg) []byte {
			m := replyA(r, "198.51.100.66")
			m.Question[0].Qtype = dns.TypeAAAA
			return packed(m)
		},
		"wrong question class": func(r *dns.Msg) []byte {
			m := replyA(r, "198.51.100.66")
			m.Question[0].Qclass = dns.ClassCHAOS
			return packed(m)
		},
		"wrong ID": func(r *dns.Msg) []byte {
			m := replyA(r, "198.51.100.66")
			m.Id = r.Id + 1
			return packed(m)
		},
		"no QR bit": func(r *dns.Msg) []byte {
			m := replyA(r, "198.51.100.66")
			m.Response = false
			return packed(m)
		},
		"garbage": func(r *dns.Msg) []byte {
			b := []byte("\x00\x00garbage garbage garbage garbage")
			b[0], b[1] = byte(r.Id>>8), byte(r.Id) // even with the right ID
			b[2] = 0x80
			return b
		},
		"short": func(r *dns.Msg) []byte { return []byte{byte(r.Id >> 8), byte(r.Id), 0x80} },
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("alone", func(t *testing.T) {
				up := startUpstream(t, misbehave(bad, false))
				const timeout = 250 * time.Millisecond
				f := newForwarder(t, Options{Upstreams: []string{up.Addr}, Timeout: timeout})
				start := time.Now()
				m, err := f.Exchange(context.Background(), query("victim.example.", dns.TypeA))
				if err == nil {
					t.Fatalf("bad reply accepted: %v", m)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want a deadline error", err)
				}
				if d := time.Since(start); d > timeout+500*time.Millisecond {
					t.Errorf("failed after %v", d)
				}
			})
			t.Run("then the right one", func(t *testing.T) {
				up := startUpstream(t, misbehave(bad, true))
				f := newForwarder(t, Options{Upstreams: []string{up.Addr}, Timeout: 2 * time.Second})
				start := time.Now()
				m, err := f.Exchange(context.Background(), query("victim.example.", dns.TypeA))
				if err != nil {
					t.Fatal(err)
				}
				if firstA(m) != "192.0.2.99" || m.Question[0].Name != "victim.example." {
					t.Errorf("answer %v", m)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("took %v", d)
				}
			})
		})
	}
}

func TestErrorRcodeWithoutQuestionIsAnAnswer(t *testing.T) {
	up := startUpstream(t, func(_ *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeRefused)
		m.Question = nil
		w.WriteMsg(m)
	})
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, Timeout: time.Second})
	req := query("refused.example.", dns.TypeA)
	m, err := f.Exchange(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeRefused || len(m.Question) != 1 || m.Question[0] != req.Question[0] {
		t.Errorf("reply %v", m)
	}
}

func TestTruncatedReplyRetriedOverTCP(t *testing.T) {
	t.Run("well-formed", func(t *testing.T) {
		testTruncated(t, func(m *dns.Msg) []byte {
			m.Truncated = true
			m.Answer = nil
			return packed(m)
		})
	})
	t.Run("cut short", func(t *testing.T) {
		testTruncated(t, func(m *dns.Msg) []byte {
			m.Truncated = true
			b := packed(m)
			return b[:len(b)-6]
		})
	})
}

// testTruncated checks the forwarder retries over TCP when the UDP reply is
// what truncate makes of the full one.
func testTruncated(t *testing.T, truncate func(*dns.Msg) []byte) {
	up := startUpstream(t, func(_ *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		m := replyA(r, "192.0.2.1")
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && !isProbe(r) {
			w.Write(truncate(m))
			return
		}
		w.WriteMsg(m)
	})
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}})
	m, err := f.Exchange(context.Background(), query("tc.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if m.Truncated || firstA(m) != "192.0.2.1" {
		t.Errorf("reply %v", m)
	}
	if up.queries.Load() != 2 || up.tcp.Load() != 1 {
		t.Errorf("upstream saw %d queries, %d over TCP; want 2 and 1", up.queries.Load(), up.tcp.Load())
	}
	if st := f.Upstreams()[0]; st.Requests != 1 || st.Failures != 0 {
		t.Errorf("stats %+v: the TCP retry is part of one exchange", st)
	}
}

func TestForceTCPInProcess(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1"))
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, ForceTCP: true})
	for i := range 3 {
		if _, err := f.Exchange(context.Background(), query(fmt.Sprintf("t%d.example.", i), dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	if up.queries.Load() != 3 || up.tcp.Load() != 3 {
		t.Errorf("upstream saw %d queries, %d over TCP; want all 3 over TCP", up.queries.Load(), up.tcp.Load())
	}
}

func TestAllUpstreamsDownFailFast(t *testing.T) {
	a := startUpstream(t, drop)
	b := startUpstream(t, drop)
	f := newForwarder(t, Options{
		Upstreams: []string{a.Addr, b.Addr}, Timeout: 500 * time.Millisecond,
		HealthCheck: 20 * time.Millisecond, MaxFails: 2, FailFast: true,
	})
	if _, err := f.Exchange(context.Background(), query("down.example.", dns.TypeA)); err == nil {
		t.Fatal("exchange with dropping upstreams succeeded")
	}
	waitFor(t, 5*time.Second, "both upstreams marked down", func() bool {
		h := healthy(f)
		return !h[a.Addr] && !h[b.Addr]
	})
	for _, s := range f.Upstreams() {
		if s.Fails < 2 || s.ProbeFailures < uint64(s.Fails) {
			t.Errorf("%s down with %d failed probes in a row, %d in all", s.Addr, s.Fails, s.ProbeFailures)
		}
	}
	before := a.queries.Load() + b.queries.Load()
	start := time.Now()
	_, err := f.Exchange(context.Background(), query("down2.example.", dns.TypeA))
	if !errors.Is(err, ErrNoHealthy) {
		t.Fatalf("err = %v, want ErrNoHealthy", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("ErrNoHealthy after %v, want at once", d)
	}
	if after := a.queries.Load() + b.queries.Load(); after != before {
		t.Errorf("a query went to a down upstream")
	}
}

func TestDownUpstreamIsSkipped(t *testing.T) {
	bad := startUpstream(t, drop)
	good := startUpstream(t, answerA("192.0.2.2"))
	f := newForwarder(t, Options{
		Upstreams: []string{bad.Addr, good.Addr}, Policy: "sequential",
		Timeout: 600 * time.Millisecond, HealthCheck: 20 * time.Millisecond, MaxFails: 2,
	})
	if _, err := f.Exchange(context.Background(), query("first.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the dropping upstream marked down", func() bool { return !healthy(f)[bad.Addr] })
	before := bad.queries.Load()
	for i := range 5 {
		start := time.Now()
		if _, err := f.Exchange(context.Background(), query(fmt.Sprintf("n%d.example.", i), dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("query %d took %v: it waited (300ms) for the down upstream", i, d)
		}
	}
	if bad.queries.Load() != before {
		t.Errorf("queries went to the down upstream")
	}
}

func TestDownUpstreamRecoversViaHealthChecks(t *testing.T) {
	var broken sync.Mutex // held while the upstream drops everything
	var isBroken = true
	up := startUpstream(t, func(u *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		broken.Lock()
		b := isBroken
		broken.Unlock()
		if !b {
			w.WriteMsg(replyA(r, "192.0.2.3"))
		}
	})
	f := newForwarder(t, Options{
		Upstreams: []string{up.Addr}, Timeout: 100 * time.Millisecond, HealthCheck: 20 * time.Millisecond, MaxFails: 1,
		FailFast: true,
	})
	if _, err := f.Exchange(context.Background(), query("x.example.", dns.TypeA)); err == nil {
		t.Fatal("exchange with a dropping upstream succeeded")
	}
	waitFor(t, 5*time.Second, "upstream marked down", func() bool { return !healthy(f)[up.Addr] })
	if _, err := f.Exchange(context.Background(), query("y.example.", dns.TypeA)); !errors.Is(err, ErrNoHealthy) {
		t.Fatalf("err = %v, want ErrNoHealthy", err)
	}
	broken.Lock()
	isBroken = false
	broken.Unlock()
	waitFor(t, 5*time.Second, "upstream healthy again", func() bool { return healthy(f)[up.Addr] })
	m, err := f.Exchange(context.Background(), query("z.example.", dns.TypeA))
	if err != nil || firstA(m) != "192.0.2.3" {
		t.Fatalf("after recovery: %v, %v", m, err)
	}
	if st := f.Upstreams()[0]; st.Fails != 0 || !st.Healthy {
		t.Errorf("after recovery: %+v", st)
	}
}

func TestNoHealthChecksWithMaxFailsZero(t *testing.T) {
	up := startUpstream(t, drop)
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, Timeout: 50 * time.Millisecond, HealthCheck: 10 * time.Millisecond})
	for range 3 {
		if _, err := f.Exchange(context.Background(), query("x.example.", dns.TypeA)); errors.Is(err, ErrNoHealthy) || err == nil {
			t.Fatalf("err = %v, want a timeout", err)
		}
	}
	if up.probes.Load() != 0 || !f.Upstreams()[0].Healthy {
		t.Errorf("health checked with MaxFails 0: %d probes, %+v", up.probes.Load(), f.Upstreams()[0])
	}
}

func TestPolicySequentialUsesFirstHealthy(t *testing.T) {
	ups := []*testUpstream{startUpstream(t, answerA("192.0.2.1")), startUpstream(t, answerA("192.0.2.2")), startUpstream(t, answerA("192.0.2.3"))}
	f := newForwarder(t, Options{Upstreams: addrs(ups), Policy: "sequential"})
	for i := range 10 {
		m, err := f.Exchange(context.Background(), query(fmt.Sprintf("s%d.example.", i), dns.TypeA))
		if err != nil || firstA(m) != "192.0.2.1" {
			t.Fatalf("query %d: %v %v", i, m, err)
		}
	}
	if got := counts(ups); !slices.Equal(got, []int64{10, 0, 0}) {
		t.Errorf("queries per upstream %v, want all on the first", got)
	}
}

func TestPolicyRoundRobinRotates(t *testing.T) {
	ups := []*testUpstream{startUpstream(t, answerA("192.0.2.1")), startUpstream(t, answerA("192.0.2.2")), startUpstream(t, answerA("192.0.2.3"))}
	f := newForwarder(t, Options{Upstreams: addrs(ups), Policy: "round_robin"})
	var got []string
	for i := range 6 {
		m, err := f.Exchange(context.Background(), query(fmt.Sprintf("r%d.example.", i), dns.TypeA))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, firstA(m))
	}
	want := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1", "192.0.2.2", "192.0.2.3"}
	if !slices.Equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
}

func TestPolicyRandomSpreads(t *testing.T) {
	ups := []*testUpstream{startUpstream(t, answerA("192.0.2.1")), startUpstream(t, answerA("192.0.2.2")), startUpstream(t, answerA("192.0.2.3"))}
	f := newForwarder(t, Options{Upstreams: addrs(ups)}) // random is the default
	const n = 300
	for i := range n {
		if _, err := f.Exchange(context.Background(), query(fmt.Sprintf("x%d.example.", i), dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	// Each gets 100 on average; under 40 has a probability below 1e-10.
	for i, c := range counts(ups) {
		if c < 40 {
			t.Errorf("upstream %d got %d of %d queries: %v", i, c, n, counts(ups))
		}
	}
}

func addrs(ups []*testUpstream) []string {
	var out []string
	for _, u := range ups {
		out = append(out, u.Addr)
	}
	return out
}

func counts(ups []*testUpstream) []int64 {
	var out []int64
	for _, u := range ups {
		out = append(out, u.queries.Load())
	}
	return out
}

// holdUpstream answers queries only once release is closed.
func holdUpstream(t *testing.T, release <-chan struct{}) *testUpstream {
	return startUpstream(t, func(u *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		if !isProbe(r) {
			select {
			case <-release:
			case <-u.done:
				return
			}
		}
		w.WriteMsg(replyA(r, "192.0.2.4"))
	})
}

func TestMaxConcurrentRefusesAtOnce(t *testing.T) {
	release := make(chan struct{})
	up := holdUpstream(t, release)
	const n = 3
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, MaxConcurrent: n, Timeout: 10 * time.Second})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := f.Exchange(context.Background(), query(fmt.Sprintf("held%d.example.", i), dns.TypeA))
			errs <- err
		})
	}
	waitFor(t, 5*time.Second, "the upstream holding n queries", func() bool { return up.queries.Load() == n })
	start := time.Now()
	_, err := f.Exchange(context.Background(), query("onemore.example.", dns.TypeA))
	if !errors.Is(err, ErrLimit) {
		t.Errorf("err = %v, want ErrLimit", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("ErrLimit after %v, want at once", d)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("held query: %v", err)
		}
	}
	// The slots are free again.
	if _, err := f.Exchange(context.Background(), query("after.example.", dns.TypeA)); err != nil {
		t.Errorf("after release: %v", err)
	}
}

func TestIdenticalQueriesSentOnce(t *testing.T) {
	release := make(chan struct{})
	up := holdUpstream(t, release)
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, Timeout: 10 * time.Second})
	const k = 10
	replies := make([]*dns.Msg, k)
	reqs := make([]*dns.Msg, k)
	var wg sync.WaitGroup
	for i := range k {
		// Same question, differing only in case and ID.
		name := "same.example."
		if i%2 == 1 {
			name = "SaMe.ExAmPlE."
		}
		reqs[i] = query(name, dns.TypeA)
		reqs[i].Id = uint16(1000 + i)
		wg.Go(func() {
			m, err := f.Exchange(context.Background(), reqs[i])
			if err != nil {
				t.Error(err)
			}
			replies[i] = m
		})
	}
	waitFor(t, 5*time.Second, "all callers joined one upstream query", func() bool {
		f.flightMu.Lock()
		defer f.flightMu.Unlock()
		for _, c := range f.flight {
			return c.dups == k-1
		}
		return false
	})
	close(release)
	wg.Wait()
	if n := up.queries.Load(); n != 1 {
		t.Errorf("upstream saw %d queries, want 1", n)
	}
	for i, m := range replies {
		if m == nil {
			continue
		}
		if m.Id != reqs[i].Id || m.Question[0].Name != reqs[i].Question[0].Name || firstA(m) != "192.0.2.4" {
			t.Errorf("caller %d got %v", i, m)
		}
		for j := range i {
			if replies[j] == m || (len(m.Answer) > 0 && replies[j] != nil && replies[j].Answer[0] == m.Answer[0]) {
				t.Errorf("callers %d and %d share a reply", i, j)
			}
		}
	}
	// Distinct DO bits are distinct queries.
	a, b := query("do.example.", dns.TypeA), query("do.example.", dns.TypeA)
	b.SetEdns0(1232, true)
	before := up.queries.Load()
	wg.Go(func() { f.Exchange(context.Background(), a) })
	wg.Go(func() { f.Exchange(context.Background(), b) })
	wg.Wait()
	if n := up.queries.Load() - before; n != 2 {
		t.Errorf("queries differing in DO: upstream saw %d, want 2", n)
	}
}

func TestCallerContextEndsWait(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := holdUpstream(t, release)
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, Timeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.Exchange(ctx, query("held.example.", dns.TypeA))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned after %v", d)
	}
}

func TestBadRequests(t *testing.T) {
	f := newForwarder(t, Options{Upstreams: []string{"127.0.0.1:1"}})
	notify := query("example.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	two := query("example.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	resp := query("example.", dns.TypeA)
	resp.Response = true
	for name, req := range map[string]*dns.Msg{"nil": nil, "notify": notify, "two questions": two, "response": resp, "none": new(dns.Msg)} {
		if _, err := f.Exchange(context.Background(), req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: err = %v, want ErrBadRequest", name, err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	bad := []Options{
		{},
		{Upstreams: []string{"dns.google"}},
		{Upstreams: []string{"1.2.3.4:0"}},
		{Upstreams: []string{"1.2.3.4:99999"}},
		{Upstreams: []string{"https://1.1.1.1"}},
		{Upstreams: []string{"tls://dns.google"}},
		{Upstreams: []string{"tls://1.1.1.1%"}},
		{Upstreams: []string{"tls://1.1.1.1%dns.google"}, TLSServerName: "one.one.one.one"},
		{Upstreams: []string{"1.2.3.4"}, Failover: []int{dns.RcodeSuccess}},
		{Upstreams: []string{"1.2.3.4"}, MaxAge: time.Second},
		{Upstreams: []string{"0.0.0.0"}},
		{Upstreams: []string{"224.0.0.1"}},
		{Upstreams: []string{"1.2.3.4"}, Policy: "fastest"},
		{Upstreams: []string{"1.2.3.4"}, Timeout: -1},
		{Upstreams: []string{"1.2.3.4"}, HealthCheck: -1},
		{Upstreams: []string{"1.2.3.4"}, MaxFails: -1},
		{Upstreams: []string{"1.2.3.4"}, MaxConcurrent: -1},
	}
	var many []string
	for i := range 16 {
		many = append(many, fmt.Sprintf("10.0.0.%d", i+1))
	}
	bad = append(bad, Options{Upstreams: many})
	for _, o := range bad {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	f, err := New(Options{Upstreams: []string{"1.2.3.4", "dns://5.6.7.8:5353", "[::1]:53", "::2", "[2001:db8::1]", "1.2.3.4:53", "::ffff:9.9.9.9"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range f.Upstreams() {
		got = append(got, s.Addr)
	}
	want := []string{"1.2.3.4:53", "5.6.7.8:5353", "[::1]:53", "[::2]:53", "[2001:db8::1]:53", "9.9.9.9:53"}
	if !slices.Equal(got, want) {
		t.Errorf("upstreams %v, want %v", got, want)
	}
	if f.timeout != defaultTimeout || f.hcInterval != defaultHealthCheck || f.maxFails != 0 {
		t.Errorf("defaults: timeout %v, health check %v, max fails %d", f.timeout, f.hcInterval, f.maxFails)
	}
	if _, ok := f.policy.(randomPolicy); !ok {
		t.Errorf("default policy %T", f.policy)
	}
}

func TestStartStop(t *testing.T) {
	up := startUpstream(t, drop)
	f, err := New(Options{Upstreams: []string{up.Addr}, Timeout: 50 * time.Millisecond, HealthCheck: 10 * time.Millisecond, MaxFails: 2})
	if err != nil {
		t.Fatal(err)
	}
	f.Stop() // before Start: nothing to stop
	f.Start()
	f.Start()
	f.Exchange(context.Background(), query("x.example.", dns.TypeA))
	waitFor(t, 5*time.Second, "probes", func() bool { return up.probes.Load() > 0 })
	done := make(chan struct{})
	go func() { f.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
	n := up.probes.Load()
	f.Exchange(context.Background(), query("y.example.", dns.TypeA))
	if up.probes.Load() != n {
		// A probe could only come from a loop that Stop did not end.
		t.Errorf("probes after Stop")
	}
}

func TestOnExchangeObservesEachUpstreamExchange(t *testing.T) {
	bad := startUpstream(t, drop)
	good := startUpstream(t, func(_ *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		m := replyA(r, "")
		m.Rcode = dns.RcodeNameError
		w.WriteMsg(m)
	})
	type obs struct {
		up    string
		rcode int
		err   bool
	}
	var mu sync.Mutex
	var seen []obs
	f := newForwarder(t, Options{
		Upstreams: []string{bad.Addr, good.Addr}, Policy: "sequential", Timeout: 200 * time.Millisecond,
		OnExchange: func(up string, rcode int, d time.Duration, err error) {
			mu.Lock()
			seen = append(seen, obs{up, rcode, err != nil})
			mu.Unlock()
		},
	})
	m, err := f.Exchange(context.Background(), query("nx.example.", dns.TypeA))
	if err != nil || m.Rcode != dns.RcodeNameError {
		t.Fatalf("%v %v", m, err)
	}
	// The dropping upstream's attempt ends at the deadline, or is
	// abandoned (and not reported) when the good one answers first.
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, obs{good.Addr, dns.RcodeNameError, false}) {
		t.Errorf("observed %v", seen)
	}
	for _, o := range seen {
		if o.up == bad.Addr && (!o.err || o.rcode != -1) {
			t.Errorf("observed %v", o)
		}
	}
}

func TestParseResolvConf(t *testing.T) {
	got, err := ParseResolvConf(filepath.Join("testdata", "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.96.0.10:53", "[2001:db8::53]:53", "[fe80::1%lo]:53", "192.0.2.53:53"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	empty := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(empty, []byte("search svc.cluster.local\n# nameserver 1.2.3.4\nnameserver bogus\n"), 0o644)
	if _, err := ParseResolvConf(empty); err == nil {
		t.Error("no nameserver: no error")
	}
	if _, err := ParseResolvConf(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestSelfLoop(t *testing.T) {
	var ifaceAddr string
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				ifaceAddr = n.IP.String()
				break
			}
		}
	}
	cases := []struct {
		upstreams, listen []string
		loop              bool
	}{
		{[]string{"127.0.0.1:53"}, []string{":53"}, true},
		{[]string{"127.0.0.1"}, []string{"0.0.0.0:53"}, true},
		{[]string{"127.0.0.53"}, []string{"[::]:53"}, true},
		{[]string{"[::1]:53"}, []string{":53"}, true},
		{[]string{"8.8.8.8", "127.0.0.1:53"}, []string{":1053", ":53"}, true},
		{[]string{"127.0.0.1:53"}, []string{"127.0.0.1:53"}, true},
		{[]string{"127.0.0.1:53"}, []string{":1053"}, false},
		{[]string{"127.0.0.1:5353"}, []string{":53"}, false},
		{[]string{"127.0.0.53:53"}, []string{"127.0.0.1:53"}, false}, // systemd-resolved beside us
		{[]string{"192.0.2.1:53"}, []string{":53"}, false},
		{[]string{"10.96.0.10:53"}, []string{"dns://:53"}, false},
	}
	if ifaceAddr != "" {
		cases = append(cases, struct {
			upstreams, listen []string
			loop              bool
		}{[]string{ifaceAddr}, []string{":53"}, true})
	}
	for _, c := range cases {
		err := SelfLoop(c.upstreams, c.listen)
		if (err != nil) != c.loop {
			t.Errorf("SelfLoop(%v, %v) = %v, want loop %v", c.upstreams, c.listen, err, c.loop)
		}
		if err != nil && !strings.Contains(err.Error(), "is this server itself") {
			t.Errorf("error %q", err)
		}
	}
	if err := SelfLoop([]string{"127.0.0.1:53"}, []string{":53"}); err == nil || !strings.Contains(err.Error(), "127.0.0.1:53") {
		t.Errorf("error %v does not name the upstream", err)
	}
	if err := SelfLoop([]string{"bogus"}, []string{":53"}); err == nil {
		t.Error("bad upstream: no error")
	}
	if err := SelfLoop([]string{"1.2.3.4"}, []string{"nonsense"}); err == nil {
		t.Error("bad listen address: no error")
	}
}

func TestPackQuery(t *testing.T) {
	for _, flags := range []uint8{0, flagRD, flagDO | flagCD, flagRD | flagAD | flagCD | flagDO} {
		q := dns.Question{Name: "Mixed.Case\\.dot.example.", Qtype: dns.TypeSRV, Qclass: dns.ClassINET}
		wire, err := packQuery(q, flags)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		o := m.IsEdns0()
		if m.Id != 0 || m.Response || m.Opcode != dns.OpcodeQuery || len(m.Question) != 1 || m.Question[0] != q ||
			len(m.Answer)+len(m.Ns) != 0 || len(m.Extra) != 1 || o == nil || o.UDPSize() != udpSize || o.Version() != 0 ||
			m.RecursionDesired != (flags&flagRD != 0) || m.CheckingDisabled != (flags&flagCD != 0) ||
			m.AuthenticatedData != (flags&flagAD != 0) || o.Do() != (flags&flagDO != 0) {
			t.Errorf("flags %b: %v", flags, m)
		}
	}
	if _, err := packQuery(dns.Question{Name: "not..valid.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, 0); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad name: %v", err)
	}
}

func TestTCPReplies(t *testing.T) {
	t.Run("garbage fails at once", func(t *testing.T) {
		up := startUpstream(t, misbehave(func(r *dns.Msg) []byte {
			return []byte{byte(r.Id >> 8), byte(r.Id), 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff}
		}, false))
		f := newForwarder(t, Options{Upstreams: []string{up.Addr}, ForceTCP: true, Timeout: 2 * time.Second})
		start := time.Now()
		_, err := f.Exchange(context.Background(), query("g.example.", dns.TypeA))
		if err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("err = %v, want a malformed reply", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("failed after %v", d)
		}
	})
	t.Run("wrong ID then the right one", func(t *testing.T) {
		up := startUpstream(t, misbehave(func(r *dns.Msg) []byte {
			m := replyA(r, "198.51.100.66")
			m.Id = r.Id ^ 0xffff
			return packed(m)
		}, true))
		f := newForwarder(t, Options{Upstreams: []string{up.Addr}, ForceTCP: true})
		m, err := f.Exchange(context.Background(), query("w.example.", dns.TypeA))
		if err != nil || firstA(m) != "192.0.2.99" {
			t.Errorf("%v %v", m, err)
		}
	})
}

func TestExtendedRcode(t *testing.T) {
	up := startUpstream(t, func(_ *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		m := replyA(r, "")
		m.Rcode = dns.RcodeBadCookie // needs the OPT's upper bits
		w.WriteMsg(m)
	})
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}})
	m, err := f.Exchange(context.Background(), query("plain.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("without EDNS: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if _, err := m.Pack(); err != nil {
		t.Errorf("reply does not pack: %v", err)
	}
	req := query("edns.example.", dns.TypeA)
	req.SetEdns0(1232, false)
	if m, err = f.Exchange(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeBadCookie {
		t.Errorf("with EDNS: rcode %s, want BADCOOKIE", dns.RcodeToString[m.Rcode])
	}
}
