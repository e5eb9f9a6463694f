package forward

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// answerRcode answers every query, probes included, with rcode.
func answerRcode(rcode int) func(*testUpstream, dns.ResponseWriter, *dns.Msg) {
	return func(_ *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		w.WriteMsg(m)
	}
}

func TestFailover(t *testing.T) {
	tests := []struct {
		name      string
		failover  []int
		first     int // the first upstream's rcode
		wantRcode int
		wantA     string
		wantAsked int64 // queries the second upstream saw
	}{
		{"SERVFAIL in the failover list asks the next upstream", []int{dns.RcodeServerFailure, dns.RcodeRefused}, dns.RcodeServerFailure, dns.RcodeSuccess, "192.0.2.2", 1},
		{"REFUSED in the failover list asks the next upstream", []int{dns.RcodeServerFailure, dns.RcodeRefused}, dns.RcodeRefused, dns.RcodeSuccess, "192.0.2.2", 1},
		{"an rcode not in the list is the answer", []int{dns.RcodeRefused}, dns.RcodeServerFailure, dns.RcodeServerFailure, "", 0},
		{"without failover any rcode is the answer", nil, dns.RcodeServerFailure, dns.RcodeServerFailure, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startUpstream(t, answerRcode(tt.first))
			b := startUpstream(t, answerA("192.0.2.2"))
			f := newForwarder(t, Options{Upstreams: []string{a.Addr, b.Addr}, Policy: "sequential", Failover: tt.failover})
			m, err := f.Exchange(context.Background(), query("fo.example.", dns.TypeA))
			if err != nil {
				t.Fatal(err)
			}
			if m.Rcode != tt.wantRcode || firstA(m) != tt.wantA {
				t.Errorf("rcode %s, answer %q; want %s, %q", dns.RcodeToString[m.Rcode], firstA(m), dns.RcodeToString[tt.wantRcode], tt.wantA)
			}
			if got := b.queries.Load(); got != tt.wantAsked {
				t.Errorf("second upstream asked %d times, want %d", got, tt.wantAsked)
			}
		})
	}
}

func TestFailoverEveryUpstreamFailingReturnsTheLastReply(t *testing.T) {
	a := startUpstream(t, answerRcode(dns.RcodeServerFailure))
	b := startUpstream(t, answerRcode(dns.RcodeRefused))
	f := newForwarder(t, Options{Upstreams: []string{a.Addr, b.Addr}, Policy: "sequential",
		Failover: []int{dns.RcodeServerFailure, dns.RcodeRefused}})
	m, err := f.Exchange(context.Background(), query("fo.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeRefused {
		t.Errorf("rcode %s, want the last upstream's REFUSED", dns.RcodeToString[m.Rcode])
	}
	if a.queries.Load() != 1 || b.queries.Load() != 1 {
		t.Errorf("asked %d and %d times, want once each", a.queries.Load(), b.queries.Load())
	}
}

func TestAllUpstreamsDownSpraysToOne(t *testing.T) {
	var answering atomic.Bool
	up := startUpstream(t, func(u *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		if answering.Load() && !isProbe(r) {
			w.WriteMsg(replyA(r, "192.0.2.9"))
		}
	})
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, Timeout: 200 * time.Millisecond,
		HealthCheck: time.Hour, MaxFails: 1})
	f.ups[0].fails.Store(1) // marked down, and its probes never answer
	answering.Store(true)
	m, err := f.Exchange(context.Background(), query("spray.example.", dns.TypeA))
	if err != nil || firstA(m) != "192.0.2.9" {
		t.Fatalf("with every upstream down: %v %v, want the answer of one tried anyway", m, err)
	}
}

func TestClientTransportIsFollowed(t *testing.T) {
	tests := []struct {
		name      string
		clientTCP bool
		opts      Options
		wantTCP   int64
	}{
		{"a UDP client's query goes over UDP", false, Options{}, 0},
		{"a TCP client's query goes over TCP", true, Options{}, 1},
		{"prefer_udp sends a TCP client's query over UDP", true, Options{PreferUDP: true}, 0},
		{"force_tcp wins over prefer_udp", false, Options{PreferUDP: true, ForceTCP: true}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, answerA("192.0.2.7"))
			o := tt.opts
			o.Upstreams = []string{up.Addr}
			f := newForwarder(t, o)
			ctx := context.Background()
			if tt.clientTCP {
				ctx = WithClientTCP(ctx)
			}
			m, err := f.Exchange(ctx, query("proto.example.", dns.TypeA))
			if err != nil || firstA(m) != "192.0.2.7" {
				t.Fatalf("%v %v", m, err)
			}
			if got := up.tcp.Load(); got != tt.wantTCP || up.queries.Load() != 1 {
				t.Errorf("%d of %d queries over TCP, want %d of 1", got, up.queries.Load(), tt.wantTCP)
			}
		})
	}
}

func TestPreferUDPRetriesTruncatedOverTCP(t *testing.T) {
	up := startUpstream(t, func(u *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		m := replyA(r, "192.0.2.8")
		if w.RemoteAddr().Network() == "udp" {
			m.Answer, m.Truncated = nil, true
		}
		w.WriteMsg(m)
	})
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, PreferUDP: true})
	m, err := f.Exchange(WithClientTCP(context.Background()), query("big.example.", dns.TypeA))
	if err != nil || firstA(m) != "192.0.2.8" || m.Truncated {
		t.Fatalf("%v %v", m, err)
	}
	if up.queries.Load() != 2 || up.tcp.Load() != 1 {
		t.Errorf("%d queries, %d over TCP; want UDP then TCP", up.queries.Load(), up.tcp.Load())
	}
}

func TestMaxAttemptsBoundsExchanges(t *testing.T) {
	a := startUpstream(t, drop)
	b := startUpstream(t, drop)
	c := startUpstream(t, drop)
	f := newForwarder(t, Options{Upstreams: []string{a.Addr, b.Addr, c.Addr}, Policy: "sequential",
		MaxAttempts: 2, Timeout: 300 * time.Millisecond})
	if _, err := f.Exchange(context.Background(), query("max.example.", dns.TypeA)); err == nil {
		t.Fatal("exchange with dropping upstreams succeeded")
	}
	if a.queries.Load() != 1 || b.queries.Load() != 1 || c.queries.Load() != 0 {
		t.Errorf("asked %d, %d, %d times; want 1, 1, 0", a.queries.Load(), b.queries.Load(), c.queries.Load())
	}
}

func TestReadTimeoutBoundsOneUpstream(t *testing.T) {
	slow := startUpstream(t, drop)
	fast := startUpstream(t, answerA("192.0.2.5"))
	f := newForwarder(t, Options{Upstreams: []string{slow.Addr, fast.Addr}, Policy: "sequential",
		ReadTimeout: 50 * time.Millisecond, Timeout: 2 * time.Second})
	start := time.Now()
	m, err := f.Exchange(context.Background(), query("rt.example.", dns.TypeA))
	if err != nil || firstA(m) != "192.0.2.5" {
		t.Fatalf("%v %v", m, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("answered after %v: the read timeout did not move on to the next upstream", d)
	}
}

func TestHealthProbeDomainAndRD(t *testing.T) {
	type probe struct {
		name string
		rd   bool
	}
	seen := make(chan probe, 16)
	up := startUpstream(t, func(u *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Qtype == dns.TypeNS {
			select {
			case seen <- probe{r.Question[0].Name, r.RecursionDesired}:
			default:
			}
		}
		m := new(dns.Msg)
		m.SetReply(r)
		w.WriteMsg(m)
	})
	tests := []struct {
		domain string
		noRec  bool
		want   probe
	}{
		{"", false, probe{".", true}},
		{"example.org", true, probe{"example.org.", false}},
	}
	for _, tt := range tests {
		f := newForwarder(t, Options{Upstreams: []string{up.Addr}, MaxFails: 2, HealthDomain: tt.domain, HealthNoRec: tt.noRec})
		f.kick(f.ups[0])
		select {
		case got := <-seen:
			if got != tt.want {
				t.Errorf("domain %q, no_rec %v: probe %+v, want %+v", tt.domain, tt.noRec, got, tt.want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no probe")
		}
		f.Stop()
	}
}

func TestSourceAddress(t *testing.T) {
	var from atomic.Value
	up := startUpstream(t, func(u *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		from.Store(w.RemoteAddr().String())
		w.WriteMsg(replyA(r, "192.0.2.1"))
	})
	f := newForwarder(t, Options{Upstreams: []string{up.Addr}, SourceAddr: netip.MustParseAddr("127.0.0.1")})
	if _, err := f.Exchange(context.Background(), query("src.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if ap, err := netip.ParseAddrPort(from.Load().(string)); err != nil || ap.Addr().String() != "127.0.0.1" {
		t.Errorf("query came from %v", from.Load())
	}
}
