package forward

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testUpstream is an in-process DNS server on 127.0.0.1 (UDP and TCP on
// one port) whose behaviour a test chooses.
type testUpstream struct {
	Addr string

	queries atomic.Int64 // queries seen, health probes excepted
	probes  atomic.Int64 // health probes seen
	tcp     atomic.Int64 // queries seen over TCP, probes excepted

	mu  sync.Mutex
	ids []uint16 // wire IDs of the queries seen, probes excepted
	// done is closed on cleanup, to release handlers that hold a query.
	done chan struct{}
}

// isProbe reports whether r is a health probe (". IN NS").
func isProbe(r *dns.Msg) bool {
	return len(r.Question) == 1 && r.Question[0].Name == "." && r.Question[0].Qtype == dns.TypeNS
}

// startUpstream runs h for every query, probes included, on a fresh
// loopback port until the test ends.
func startUpstream(t testing.TB, h func(u *testUpstream, w dns.ResponseWriter, r *dns.Msg)) *testUpstream {
	t.Helper()
	u := &testUpstream{done: make(chan struct{})}
	pc, l := listenBoth(t)
	u.Addr = pc.LocalAddr().String()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if isProbe(r) {
			u.probes.Add(1)
		} else {
			u.queries.Add(1)
			if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
				u.tcp.Add(1)
			}
			u.mu.Lock()
			u.ids = append(u.ids, r.Id)
			u.mu.Unlock()
		}
		h(u, w, r)
	})
	var started sync.WaitGroup
	started.Add(2)
	udp := &dns.Server{PacketConn: pc, Handler: handler, NotifyStartedFunc: started.Done}
	tcp := &dns.Server{Listener: l, Handler: handler, NotifyStartedFunc: started.Done,
		ReadTimeout: 2 * time.Second, IdleTimeout: func() time.Duration { return 2 * time.Second }}
	for _, s := range []*dns.Server{udp, tcp} {
		go s.ActivateAndServe()
	}
	started.Wait()
	t.Cleanup(func() {
		close(u.done)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		udp.ShutdownContext(ctx)
		tcp.ShutdownContext(ctx)
	})
	return u
}

// wireIDs returns the IDs of the queries seen.
func (u *testUpstream) wireIDs() []uint16 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]uint16(nil), u.ids...)
}

// listenBoth binds UDP and TCP on the same free loopback port.
func listenBoth(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("no free port for both UDP and TCP")
	return nil, nil
}

// freePort returns a loopback port that was free for UDP and TCP.
func freePort(t testing.TB) string {
	pc, l := listenBoth(t)
	addr := pc.LocalAddr().String()
	pc.Close()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// answerA answers every query, probes included, with an A record of ip
// for the question's name (none for other types or probes).
func answerA(ip string) func(*testUpstream, dns.ResponseWriter, *dns.Msg) {
	return func(_ *testUpstream, w dns.ResponseWriter, r *dns.Msg) {
		w.WriteMsg(replyA(r, ip))
	}
}

// replyA is the reply to r with an A record of ip when r asks for A.
func replyA(r *dns.Msg, ip string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if o := r.IsEdns0(); o != nil {
		m.SetEdns0(1232, o.Do())
	}
	if q := r.Question[0]; q.Qtype == dns.TypeA {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.ParseIP(ip),
		})
	}
	return m
}

// drop ignores every query, probes included.
func drop(*testUpstream, dns.ResponseWriter, *dns.Msg) {}

// query returns a recursive A query for name with a fixed ID.
func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 4242
	return m
}

// newForwarder returns a started Forwarder, stopped when the test ends.
func newForwarder(t testing.TB, o Options) *Forwarder {
	t.Helper()
	if o.Log == nil {
		o.Log = testLogger(t)
	}
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	t.Cleanup(f.Stop)
	return f
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// firstA returns the address of the first A record of m, or "".
func firstA(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// healthy reports which upstreams f sees as healthy, by address.
func healthy(f *Forwarder) map[string]bool {
	out := map[string]bool{}
	for _, s := range f.Upstreams() {
		out[s.Addr] = s.Healthy
	}
	return out
}

// testLogger logs to the test's output, shown when it fails or with -v,
// and drops what goroutines still log once the test is over.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{out: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		w.out = nil
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out == nil {
		return len(b), nil
	}
	return w.out.Write(b)
}
