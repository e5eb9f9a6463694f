package main

// Fault tests that need no API server (issue 7, section 2): upstreams that
// are unreachable, slow or answer garbage; a manifests directory whose files
// are swapped, deleted or made unreadable; SIGTERM under load with a
// lameduck. Each runs svcdisc under a steady query load (steadyLoad) and
// asserts that nothing that should be answered is lost. Every wait is
// bounded; nothing asserts on speed, only on correctness bounds such as
// "SERVFAIL comes before the forward deadline".

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
)

// ---------------------------------------------------------------- steady load

// loadProbe is one query of a steady load and the answers it may get.
type loadProbe struct {
	// name is the query name; a "%d" in it is replaced by a number unique
	// to each query (a name no cache has seen).
	name  string
	qtype uint16
	// want lists the acceptable answer sections of a NOERROR reply, each
	// as its records without TTLs, sorted (see answerSet). A NOERROR reply
	// matching none of them is a wrong answer. Empty: any is accepted.
	want [][]string
}

// answerSet returns records as a sorted answer set without TTLs, the way
// answer() prints them.
func answerSet(records ...string) []string {
	out := make([]string, len(records))
	for i, r := range records {
		out[i] = strings.ReplaceAll(r, "\t", " ")
	}
	sort.Strings(out)
	return out
}

func answerOf(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		rr = dns.Copy(rr)
		rr.Header().Ttl = 0
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	sort.Strings(out)
	return out
}

// loadStats counts what a steady load got.
type loadStats struct {
	Sent     int            // queries (a retry is part of the same query)
	Answered int            // queries that got a reply
	Timeouts int            // first attempts that timed out (then retried, if retrying)
	Lost     int            // queries that got no reply at all
	Rcodes   map[string]int // replies by rcode
	Wrong    int            // NOERROR replies with an unexpected answer
	// MaxLatency is the longest time to a reply, by rcode, from the
	// attempt that got it.
	MaxLatency map[string]time.Duration
	Samples    []string    // a few wrong answers and errors, for the failure message
	LostAt     []time.Time // when each lost query was first sent
	// LastAnsweredSentAt is when the latest-sent answered query was sent.
	LastAnsweredSentAt time.Time
}

func (s loadStats) String() string {
	rc := make([]string, 0, len(s.Rcodes))
	for k, v := range s.Rcodes {
		rc = append(rc, fmt.Sprintf("%s=%d (max %v)", k, v, s.MaxLatency[k].Round(time.Millisecond)))
	}
	sort.Strings(rc)
	return fmt.Sprintf("sent %d, answered %d [%s], wrong %d, first-attempt timeouts %d, lost %d",
		s.Sent, s.Answered, strings.Join(rc, " "), s.Wrong, s.Timeouts, s.Lost)
}

// steadyLoad is a set of goroutines querying a DNS server continuously.
type steadyLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	st     loadStats
	seq    atomic.Uint64
}

// loadOptions shape a steady load.
type loadOptions struct {
	workers int
	net     string        // "udp" (default) or "tcp"
	timeout time.Duration // per attempt
	retry   bool          // retry once, only after a timeout
	pause   time.Duration // between one worker's queries (default 2 ms), so two shared cores stay usable
}

// startLoad starts o.workers goroutines that query addr in turn with probes
// until stop (or the end of the test). Each query waits at most o.timeout
// per attempt, so stop returns within about two timeouts.
func startLoad(t *testing.T, addr string, o loadOptions, probes ...loadProbe) *steadyLoad {
	t.Helper()
	if o.workers == 0 {
		o.workers = 4
	}
	if o.net == "" {
		o.net = "udp"
	}
	if o.pause == 0 {
		o.pause = 2 * time.Millisecond
	}
	probes = slices.Clone(probes) // the caller may share it with another load
	for i := range probes {
		want := make([][]string, len(probes[i].want))
		for j, w := range probes[i].want {
			want[j] = answerSet(w...)
		}
		probes[i].want = want
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &steadyLoad{cancel: cancel, st: loadStats{Rcodes: make(map[string]int), MaxLatency: make(map[string]time.Duration)}}
	for w := range o.workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &dns.Client{Net: o.net, Timeout: o.timeout}
			for i := w; ctx.Err() == nil; i++ {
				l.one(c, addr, probes[i%len(probes)], o.retry)
				select {
				case <-ctx.Done():
				case <-time.After(o.pause):
				}
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (l *steadyLoad) one(c *dns.Client, addr string, p loadProbe, retry bool) {
	name := p.name
	if strings.Contains(name, "%d") {
		name = fmt.Sprintf(name, l.seq.Add(1))
	}
	m := new(dns.Msg)
	m.SetQuestion(name, p.qtype)
	sent := time.Now()
	begin := sent
	r, _, err := c.Exchange(m, addr)
	timedOut := err != nil && isTimeout(err)
	if timedOut && retry {
		m.Id = dns.Id()
		begin = time.Now()
		r, _, err = c.Exchange(m, addr)
	}
	took := time.Since(begin)

	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.st
	s.Sent++
	if timedOut {
		s.Timeouts++
	}
	if err != nil {
		s.Lost++
		s.LostAt = append(s.LostAt, sent)
		if len(s.Samples) < 10 {
			s.Samples = append(s.Samples, fmt.Sprintf("%s %s: %v", name, dns.TypeToString[p.qtype], err))
		}
		return
	}
	s.Answered++
	if sent.After(s.LastAnsweredSentAt) {
		s.LastAnsweredSentAt = sent
	}
	rc := dns.RcodeToString[r.Rcode]
	s.Rcodes[rc]++
	s.MaxLatency[rc] = max(s.MaxLatency[rc], took)
	if r.Rcode != dns.RcodeSuccess || len(p.want) == 0 {
		return
	}
	got := answerOf(r)
	for _, w := range p.want {
		if slices.Equal(got, w) {
			return
		}
	}
	s.Wrong++
	if len(s.Samples) < 10 {
		s.Samples = append(s.Samples, fmt.Sprintf("%s %s: wrong answer %q, want one of %q", name, dns.TypeToString[p.qtype], got, p.want))
	}
}

// snapshot returns the counts so far.
func (l *steadyLoad) snapshot() loadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.st
	s.Rcodes = make(map[string]int, len(l.st.Rcodes))
	for k, v := range l.st.Rcodes {
		s.Rcodes[k] = v
	}
	s.MaxLatency = make(map[string]time.Duration, len(l.st.MaxLatency))
	for k, v := range l.st.MaxLatency {
		s.MaxLatency[k] = v
	}
	s.Samples = slices.Clone(l.st.Samples)
	s.LostAt = slices.Clone(l.st.LostAt)
	return s
}

// stop stops the load, waits for the queries in flight, and returns the
// counts.
func (l *steadyLoad) stop() loadStats {
	l.cancel()
	l.wg.Wait()
	return l.snapshot()
}

// requireClean fails unless every query got a reply (after at most one
// retry) that is NOERROR with an expected answer.
func requireClean(t *testing.T, what string, s loadStats) {
	t.Helper()
	t.Logf("%s: %s", what, s)
	if s.Sent < 50 {
		t.Errorf("%s: only %d queries sent: the load did not run", what, s.Sent)
	}
	if s.Lost != 0 || s.Wrong != 0 || s.Rcodes["NOERROR"] != s.Answered {
		t.Errorf("%s: %s; want every query answered NOERROR with the right records\n%s", what, s, strings.Join(s.Samples, "\n"))
	}
}

// ---------------------------------------------------------------- in-process server

// serveFaults starts svcdisc in-process on corefile, serving manifests, with
// its log (Info and up) written to logw and the test log.
func serveFaults(t *testing.T, corefile, manifests string, logw io.Writer) *running {
	t.Helper()
	cfg, err := config.Parse("Corefile", strings.NewReader(corefile))
	if err != nil {
		t.Fatal(err)
	}
	w := io.Writer(testWriter{t})
	if logw != nil {
		w = io.MultiWriter(logw, w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in, err := start(ctx, cfg, serveFlags{manifests: manifests, dnsAddr: "127.0.0.1:0"},
		slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &running{in: in, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.wait(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("shutdown: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("svcdisc did not stop within 15s")
		}
	})
	return r
}

// ---------------------------------------------------------------- a faulty upstream

const (
	upGood    = iota // answers every A query with 192.0.2.1, TTL 300
	upSlow           // answers as upGood, after the delay
	upGarbage        // answers garbage, wrong IDs, wrong questions, cut packets
)

// faultyUpstream is a loopback DNS server over UDP and TCP whose behaviour
// can be switched, and which can be closed (its port then refuses) and
// reopened on the same port.
type faultyUpstream struct {
	t       *testing.T
	addr    string
	mode    atomic.Int32
	delay   atomic.Int64 // of upSlow
	queries atomic.Int64

	mu     sync.Mutex
	pc     net.PacketConn
	ln     net.Listener
	wg     sync.WaitGroup
	closed bool
}

func startFaultyUpstream(t *testing.T) *faultyUpstream {
	t.Helper()
	u := &faultyUpstream{t: t}
	u.delay.Store(int64(3 * time.Second))
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if attempt < 10 {
				continue // the TCP port is taken: pick another
			}
			t.Fatal(err)
		}
		u.addr, u.pc, u.ln = pc.LocalAddr().String(), pc, ln
		break
	}
	u.serve()
	t.Cleanup(u.close)
	return u
}

func (u *faultyUpstream) serve() {
	pc, ln := u.pc, u.ln
	u.wg.Add(2)
	go func() {
		defer u.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			u.answerUDP(pc, from, slices.Clone(buf[:n]))
		}
	}()
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.answerTCP(c)
			}()
		}
	}()
}

// close closes both sockets: from then on the port refuses (ICMP port
// unreachable for UDP, RST for TCP).
func (u *faultyUpstream) close() {
	u.mu.Lock()
	if !u.closed {
		u.closed = true
		u.pc.Close()
		u.ln.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// reopen listens again on the same port.
func (u *faultyUpstream) reopen() {
	u.t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	pc, err := net.ListenPacket("udp", u.addr)
	if err != nil {
		u.t.Fatalf("reopen the upstream: %v", err)
	}
	ln, err := net.Listen("tcp", u.addr)
	if err != nil {
		pc.Close()
		u.t.Fatalf("reopen the upstream: %v", err)
	}
	u.pc, u.ln, u.closed = pc, ln, false
	u.serve()
}

// goodReply is the answer of a well-behaved upstream to q.
func goodReply(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeA {
		rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = append(m.Answer, rr)
	}
	return m
}

// garbage returns what a broken upstream sends back to q over UDP: nothing
// of it is a usable reply, and the last one sends a careful client to TCP.
func garbage(q *dns.Msg) [][]byte {
	good, _ := goodReply(q).Pack()
	var out [][]byte
	out = append(out, []byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 2}) // shorter than a header
	wrongID := slices.Clone(good)
	wrongID[0] ^= 0x5a // another query's reply
	out = append(out, wrongID)
	other := goodReply(q)
	other.Question[0].Name = "someone-else.example."
	if b, err := other.Pack(); err == nil {
		out = append(out, b) // the right ID, the wrong question
	}
	// The right ID and flags, one question announced, then a label that
	// runs off the end: it does not parse.
	broken := slices.Clone(good[:12])
	binary.BigEndian.PutUint16(broken[4:], 1)
	binary.BigEndian.PutUint16(broken[6:], 3)
	out = append(out, append(broken, 0x3f, 'g', 'a', 'r', 'b'))
	if q.Id%2 == 0 {
		// A reply cut short, with TC set: go and ask over TCP (which
		// breaks too). Without it the client waits for a usable reply
		// until its deadline.
		cut := slices.Clone(good[:len(good)-5])
		cut[2] |= 0x02
		out = append(out, cut)
	}
	return out
}

func (u *faultyUpstream) answerUDP(pc net.PacketConn, from net.Addr, b []byte) {
	q := new(dns.Msg)
	if q.Unpack(b) != nil {
		return
	}
	u.queries.Add(1)
	switch u.mode.Load() {
	case upGood:
		out, _ := goodReply(q).Pack()
		pc.WriteTo(out, from)
	case upSlow:
		out, _ := goodReply(q).Pack()
		time.AfterFunc(time.Duration(u.delay.Load()), func() { pc.WriteTo(out, from) })
	case upGarbage:
		for _, g := range garbage(q) {
			pc.WriteTo(g, from)
		}
	}
}

func (u *faultyUpstream) answerTCP(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		q := new(dns.Msg)
		if q.Unpack(b) != nil {
			return
		}
		u.queries.Add(1)
		switch u.mode.Load() {
		case upSlow:
			time.Sleep(time.Duration(u.delay.Load()))
			fallthrough
		case upGood:
			out, _ := goodReply(q).Pack()
			c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...))
		case upGarbage:
			// A message too short to be a reply, then the connection is
			// closed in the middle of the next one.
			c.Write([]byte{0, 5, 1, 2, 3, 4, 5, 0, 200, 9, 9})
			return
		}
	}
}

// ---------------------------------------------------------------- upstream faults

// upstreamCorefile forwards to one upstream, with a cache whose success
// entries expire after 1 s and are then served stale for an hour.
const upstreamCorefile = `. {
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . %s {
        max_fails 2
        health_check 0.5s
    }
    cache {
        success 1000 1
        serve_stale 1h
    }
}
`

// clusterProbes are names of examples/ that exist throughout.
func clusterProbes() []loadProbe {
	return []loadProbe{
		{name: "web.shop.svc.cluster.local.", qtype: dns.TypeA, want: [][]string{{"web.shop.svc.cluster.local. 0 IN A 10.96.10.10"}}},
		{name: "_http._tcp.web.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			want: [][]string{{"_http._tcp.web.shop.svc.cluster.local. 0 IN SRV 0 100 80 web.shop.svc.cluster.local."}}},
		{name: "api.shop.svc.cluster.local.", qtype: dns.TypeA, want: [][]string{{"api.shop.svc.cluster.local. 0 IN A 10.96.10.20"}}},
		{name: "_grpc._tcp.api.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			want: [][]string{{"_grpc._tcp.api.shop.svc.cluster.local. 0 IN SRV 0 100 9090 api.shop.svc.cluster.local."}}},
	}
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// upstreamFault runs svcdisc forwarding to an upstream that breaks (fault)
// and recovers (heal) under a steady load of cluster names, of external
// names never asked before, and of one external name cached before the
// outage. Cluster names must all be answered right; new external names
// SERVFAIL within the forward deadline; the cached one served stale; and
// afterwards the goroutines and the heap come back to where they were.
func upstreamFault(t *testing.T, fault, heal func(*faultyUpstream)) {
	up := startFaultyUpstream(t)
	r := serveFaults(t, fmt.Sprintf(upstreamCorefile, up.addr), "../../examples", nil)
	addr := r.in.dnsAddr()

	const staleName = "stale.example."
	if got := firstA(query(t, "udp", addr, staleName, dns.TypeA)); got != "192.0.2.1" {
		t.Fatalf("before the outage %s A = %q, want 192.0.2.1", staleName, got)
	}
	if got := firstA(query(t, "udp", addr, "warm.example.", dns.TypeA)); got != "192.0.2.1" {
		t.Fatalf("before the outage warm.example A = %q", got)
	}
	time.Sleep(1500 * time.Millisecond) // the cached entry expires (success TTL 1 s)

	goroutinesBefore := runtime.NumGoroutine()
	heapBefore := heapInUse()

	fault(up)
	cluster := startLoad(t, addr, loadOptions{workers: 4, timeout: time.Second, retry: true}, clusterProbes()...)
	// External queries wait past the forward deadline: a reply must come
	// before it, so a client timeout is a failure, not a retry.
	extOpts := loadOptions{workers: 2, timeout: forwardTimeout + 3*time.Second}
	external := startLoad(t, addr, extOpts, loadProbe{name: "q%d.outage.example.", qtype: dns.TypeA})
	stale := startLoad(t, addr, loadOptions{workers: 1, timeout: extOpts.timeout},
		loadProbe{name: staleName, qtype: dns.TypeA, want: [][]string{{staleName + " 0 IN A 192.0.2.1"}}})
	time.Sleep(5 * time.Second)
	cs, es, ss := cluster.stop(), external.stop(), stale.stop()

	requireClean(t, "cluster names during the outage", cs)

	// The forward deadline plus a margin for scheduling: a correctness
	// bound (a reply before the client gives up), not a speed target.
	bound := forwardTimeout + time.Second
	t.Logf("new external names during the outage: %s", es)
	if es.Sent < 3 || es.Lost != 0 || es.Rcodes["SERVFAIL"] != es.Answered {
		t.Errorf("new external names: %s; want every one answered SERVFAIL\n%s", es, strings.Join(es.Samples, "\n"))
	}
	if d := es.MaxLatency["SERVFAIL"]; d > bound {
		t.Errorf("a SERVFAIL took %v, beyond the %v forward deadline + 1s", d, forwardTimeout)
	}
	t.Logf("a name cached before the outage: %s", ss)
	if ss.Sent < 2 || ss.Lost != 0 || ss.Wrong != 0 || ss.Rcodes["NOERROR"] != ss.Answered {
		t.Errorf("%s: %s; want it served stale (NOERROR 192.0.2.1) every time\n%s", staleName, ss, strings.Join(ss.Samples, "\n"))
	}
	if d := ss.MaxLatency["NOERROR"]; d > bound {
		t.Errorf("a stale answer took %v, beyond the %v forward deadline + 1s", d, forwardTimeout)
	}
	sq := new(dns.Msg)
	sq.SetQuestion(staleName, dns.TypeA)
	if m, _, err := (&dns.Client{Timeout: extOpts.timeout}).Exchange(sq, addr); err != nil || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 30 {
		t.Errorf("%s during the outage: %v %v, want the stale answer with TTL 30", staleName, m, err)
	}

	heal(up)
	waitFor(t, 15*time.Second, "external names resolving again after the outage", func() bool {
		m := query(t, "udp", addr, fmt.Sprintf("after%d.example.", time.Now().UnixNano()), dns.TypeA)
		return m.Rcode == dns.RcodeSuccess && firstA(m) == "192.0.2.1"
	})

	// Queries in flight upstream end within the forward deadline, and the
	// slow upstream's own delayed replies within its delay: poll.
	const slack = 10
	var goroutinesAfter int
	deadline := time.Now().Add(15 * time.Second)
	for {
		goroutinesAfter = runtime.NumGoroutine()
		if goroutinesAfter <= goroutinesBefore+slack || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	heapAfter := heapInUse()
	t.Logf("goroutines before %d, after %d; heap before %.1f MiB, after %.1f MiB; upstream saw %d queries",
		goroutinesBefore, goroutinesAfter, float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), up.queries.Load())
	if goroutinesAfter > goroutinesBefore+slack {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines grew from %d to %d after the outage:\n%s", goroutinesBefore, goroutinesAfter, buf[:runtime.Stack(buf, true)])
	}
	if heapAfter > heapBefore+8<<20 {
		t.Errorf("heap grew from %d to %d bytes after the outage", heapBefore, heapAfter)
	}
}

func TestFaultUpstreamUnreachable(t *testing.T) {
	upstreamFault(t, (*faultyUpstream).close, (*faultyUpstream).reopen)
}

func TestFaultUpstreamSlow(t *testing.T) {
	upstreamFault(t,
		func(u *faultyUpstream) { u.mode.Store(upSlow) }, // 3 s, beyond the 2 s deadline
		func(u *faultyUpstream) { u.mode.Store(upGood) })
}

func TestFaultUpstreamGarbage(t *testing.T) {
	upstreamFault(t,
		func(u *faultyUpstream) { u.mode.Store(upGarbage) },
		func(u *faultyUpstream) { u.mode.Store(upGood) })
}

// ---------------------------------------------------------------- manifests directory faults

func serviceYAML(ns string, svcs ...[2]string) string {
	var b strings.Builder
	for i, s := range svcs {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: %s, namespace: %s}
spec:
  clusterIP: %s
  ports:
  - {name: http, port: 80, protocol: TCP}
`, s[0], ns, s[1])
	}
	return b.String()
}

// writeAtomic replaces path with data the way an editor or a ConfigMap
// update does: a hidden temporary file (svcdisc skips dot files), renamed
// over the old one.
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// logged waits until a line of the log after offset from holds all of parts.
func logged(t *testing.T, log *lockedBuffer, from int, what string, parts ...string) {
	t.Helper()
	waitFor(t, 10*time.Second, what, func() bool {
		for line := range strings.Lines(log.String()[from:]) {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return true
			}
		}
		return false
	})
}

// steadyFor asserts that name keeps answering want (A records) for d.
func steadyFor(t *testing.T, addr, name string, d time.Duration, want ...string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		m := query(t, "udp", addr, name, dns.TypeA)
		var got []string
		for _, rr := range m.Answer {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.A.String())
			}
		}
		sort.Strings(got)
		if m.Rcode != dns.RcodeSuccess || !slices.Equal(got, want) {
			t.Fatalf("%s: %s %q, want NOERROR %q", name, dns.RcodeToString[m.Rcode], got, want)
		}
	}
}

// TestFaultManifestsDirectory serves a manifests directory under a steady
// load while its files are replaced atomically, deleted, made unreadable or
// broken, and while the whole directory is deleted and recreated. Names
// that exist throughout must never fail; a deleted file's names go; an
// unreadable or broken file keeps its last good objects, and says so in
// the log (zones/manifests.go).
func TestFaultManifestsDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "m")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Glob("../../examples/*.yaml")
	// populate writes the examples and the test's own files into d.
	populate := func(d string, files map[string]string) {
		for _, f := range examples {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(d, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	aYAML := filepath.Join(dir, "a.yaml")
	populate(dir, map[string]string{
		"a.yaml": serviceYAML("fault", [2]string{"a", "10.96.200.1"}),
		"b.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: fault}\n---\n" + serviceYAML("fault", [2]string{"b", "10.96.200.2"}),
		"c.yaml": serviceYAML("fault", [2]string{"c", "10.96.200.3"}),
	})

	var log lockedBuffer
	r := serveFaults(t, `. {
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        fallthrough in-addr.arpa ip6.arpa
    }
}
`, dir, &log)
	addr := r.in.dnsAddr()
	const zone = ".fault.svc.cluster.local."
	steadyFor(t, addr, "a"+zone, time.Millisecond, "10.96.200.1")
	steadyFor(t, addr, "c"+zone, time.Millisecond, "10.96.200.3")
	// Wait for the watcher's first scan, so later edits are changes.
	time.Sleep(300 * time.Millisecond)

	aAnswers := func(ips ...string) [][]string {
		var out [][]string
		for _, ip := range ips {
			out = append(out, []string{"a" + zone + " 0 IN A " + ip})
		}
		return out
	}
	probes := append(clusterProbes(),
		loadProbe{name: "b" + zone, qtype: dns.TypeA, want: [][]string{{"b" + zone + " 0 IN A 10.96.200.2"}}},
		loadProbe{name: "_http._tcp.b" + zone, qtype: dns.TypeSRV, want: [][]string{{"_http._tcp.b" + zone + " 0 IN SRV 0 100 80 b" + zone}}},
		// a changes, but exists throughout: never NXDOMAIN.
		loadProbe{name: "a" + zone, qtype: dns.TypeA, want: aAnswers("10.96.200.1", "10.96.200.11", "10.96.200.21")},
	)
	load := startLoad(t, addr, loadOptions{workers: 4, timeout: time.Second, retry: true}, probes...)

	// 1. A file replaced atomically: the new records appear.
	goodA := serviceYAML("fault", [2]string{"a", "10.96.200.11"}, [2]string{"a2", "10.96.200.12"})
	writeAtomic(t, aYAML, goodA)
	waitFor(t, 5*time.Second, "the replaced file's records", func() bool {
		return firstA(query(t, "udp", addr, "a"+zone, dns.TypeA)) == "10.96.200.11" &&
			firstA(query(t, "udp", addr, "a2"+zone, dns.TypeA)) == "10.96.200.12"
	})

	// 2. A file deleted: its records go, the others stay.
	if err := os.Remove(filepath.Join(dir, "c.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the deleted file's records withdrawn", func() bool {
		return query(t, "udp", addr, "c"+zone, dns.TypeA).Rcode == dns.RcodeNameError
	})

	// 3. A file made unreadable: the last good state is kept and the error
	// logged. As root, chmod 000 does not stop a read; a broken symbolic
	// link (renamed over the file, atomically) is unreadable for anyone.
	mark := len(log.String())
	if err := os.Chmod(aYAML, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(aYAML); err == nil {
		t.Logf("chmod 000 does not stop reads here (uid %d): the broken symlink and broken YAML cases stand in for it", os.Getuid())
	} else {
		// Touch it, so the watcher reads it again whatever its mtime.
		now := time.Now()
		os.Chtimes(aYAML, now, now)
		logged(t, &log, mark, "the unreadable file reported", "manifests: cannot read", "path="+aYAML)
		steadyFor(t, addr, "a"+zone, 300*time.Millisecond, "10.96.200.11")
		steadyFor(t, addr, "a2"+zone, 300*time.Millisecond, "10.96.200.12")
	}
	os.Chmod(aYAML, 0o644)

	mark = len(log.String())
	link := filepath.Join(dir, ".a.link")
	if err := os.Symlink(filepath.Join(root, "nowhere.yaml"), link); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link, aYAML); err != nil {
		t.Fatal(err)
	}
	logged(t, &log, mark, "the broken symlink reported", "manifests: cannot read", "path="+aYAML+" ")
	steadyFor(t, addr, "a"+zone, 300*time.Millisecond, "10.96.200.11")
	steadyFor(t, addr, "a2"+zone, 300*time.Millisecond, "10.96.200.12")

	mark = len(log.String())
	writeAtomic(t, aYAML, "apiVersion: v1\nkind: Service\nmetadata: {name: a\n")
	logged(t, &log, mark, "the broken YAML reported", "manifests: cannot parse file", "file="+aYAML)
	steadyFor(t, addr, "a"+zone, 300*time.Millisecond, "10.96.200.11")
	steadyFor(t, addr, "a2"+zone, 300*time.Millisecond, "10.96.200.12")

	mark = len(log.String())
	writeAtomic(t, aYAML, goodA)
	logged(t, &log, mark, "the file recovered", "manifests: recovered", "path="+aYAML)

	// 4. The whole directory deleted, then recreated. It goes in one step
	// (renamed away, then removed), as removing file by file would show
	// svcdisc a half-empty directory, whose missing files rightly take
	// their objects with them. While it is missing everything is kept.
	mark = len(log.String())
	gone := filepath.Join(root, ".gone")
	if err := os.Rename(dir, gone); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	logged(t, &log, mark, "the missing directory reported", "manifests: cannot read", `err="stat `+dir+`:`)
	steadyFor(t, addr, "a"+zone, 500*time.Millisecond, "10.96.200.11")
	steadyFor(t, addr, "a2"+zone, 300*time.Millisecond, "10.96.200.12")

	fresh := filepath.Join(root, "m.new")
	if err := os.Mkdir(fresh, 0o755); err != nil {
		t.Fatal(err)
	}
	populate(fresh, map[string]string{
		"a.yaml": serviceYAML("fault", [2]string{"a", "10.96.200.21"}),
		"b.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: fault}\n---\n" + serviceYAML("fault", [2]string{"b", "10.96.200.2"}),
	})
	mark = len(log.String())
	if err := os.Rename(fresh, dir); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the recreated directory served", func() bool {
		return firstA(query(t, "udp", addr, "a"+zone, dns.TypeA)) == "10.96.200.21" &&
			query(t, "udp", addr, "a2"+zone, dns.TypeA).Rcode == dns.RcodeNameError
	})
	logged(t, &log, mark, "the directory recovered", "manifests: recovered", "path="+dir+"\n")
	// And it is watched again.
	writeAtomic(t, filepath.Join(dir, "c.yaml"), serviceYAML("fault", [2]string{"c", "10.96.200.33"}))
	waitFor(t, 5*time.Second, "a new file in the recreated directory", func() bool {
		return firstA(query(t, "udp", addr, "c"+zone, dns.TypeA)) == "10.96.200.33"
	})

	requireClean(t, "names that exist throughout", load.stop())
}

// ---------------------------------------------------------------- SIGTERM under load

// stampedLog is a child's stderr: it keeps the text and when each pattern
// first appeared.
type stampedLog struct {
	lockedBuffer
	mu    sync.Mutex
	first map[string]time.Time
	pats  []string
}

func newStampedLog(pats ...string) *stampedLog {
	return &stampedLog{first: make(map[string]time.Time), pats: pats}
}

func (s *stampedLog) Write(p []byte) (int, error) {
	now := time.Now()
	s.mu.Lock()
	for _, pat := range s.pats {
		if _, ok := s.first[pat]; !ok && strings.Contains(string(p), pat) {
			s.first[pat] = now
		}
	}
	s.mu.Unlock()
	return s.lockedBuffer.Write(p)
}

func (s *stampedLog) seen(pat string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.first[pat]
	return t, ok
}

var logAddr = regexp.MustCompile(`msg="serving (DNS|HTTP)" addr=(\S+)`)

// TestFaultSIGTERMUnderLoadWithLameduck runs the real binary with a 2 s
// lameduck under a steady UDP and TCP load, sends SIGTERM, and checks that
// /ready fails at once, that every query sent during the lameduck is
// answered, that a query in flight upstream when the listeners close is
// still answered, and that the process exits 0.
func TestFaultSIGTERMUnderLoadWithLameduck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "svcdisc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	up := startFaultyUpstream(t)
	up.mode.Store(upSlow)
	up.delay.Store(int64(1500 * time.Millisecond)) // within the 2 s forward deadline
	const lameduck = 2 * time.Second
	conf := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`. {
    health 127.0.0.1:0 {
        lameduck %s
    }
    ready 127.0.0.1:0
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . %s
}
`, lameduck, up.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := newStampedLog("lameduck: still answering", "shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--conf", conf, "--manifests", "../../examples", "--dns-addr", "127.0.0.1:0")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var exitedAt time.Time
	go func() {
		err := cmd.Wait()
		exitedAt = time.Now()
		exited <- err
	}()
	t.Cleanup(func() { cmd.Process.Kill() })

	var dnsAddr string
	var httpAddrs []string
	waitFor(t, 15*time.Second, "server start", func() bool {
		dnsAddr, httpAddrs = "", nil
		for _, m := range logAddr.FindAllStringSubmatch(stderr.String(), -1) {
			if m[1] == "DNS" {
				dnsAddr = m[2]
			} else {
				httpAddrs = append(httpAddrs, m[2])
			}
		}
		return dnsAddr != "" && len(httpAddrs) > 0 // health and ready share 127.0.0.1:0
	})
	get := func(addr, path string) int {
		c := &http.Client{Timeout: time.Second}
		resp, err := c.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var readyAddr string
	waitFor(t, 10*time.Second, "/ready 200", func() bool {
		for _, a := range httpAddrs {
			if get(a, "/ready") == http.StatusOK {
				readyAddr = a
				return true
			}
		}
		return false
	})
	if got := firstA(query(t, "udp", dnsAddr, "web.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.10" {
		t.Fatalf("web A = %q before SIGTERM", got)
	}

	probes := clusterProbes()
	udp := startLoad(t, dnsAddr, loadOptions{workers: 4, timeout: time.Second}, probes...)
	tcp := startLoad(t, dnsAddr, loadOptions{workers: 1, net: "tcp", timeout: time.Second}, probes...)
	time.Sleep(500 * time.Millisecond)

	sigterm := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	readyFailed := false
	for time.Since(sigterm) < time.Second {
		if get(readyAddr, "/ready") == http.StatusServiceUnavailable {
			readyFailed = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !readyFailed {
		t.Error("/ready did not fail within 1s of SIGTERM")
	}
	if _, ok := stderr.seen("shutting down"); ok {
		t.Error("/ready failed only after the lameduck ended")
	}

	// A forwarded query sent over TCP late in the lameduck is still
	// upstream (for 1.5 s) when the listeners close: it must be answered
	// all the same. (UDP: TestFaultShutdownAnswersUDPQueryInFlight.)
	time.Sleep(time.Until(sigterm.Add(lameduck - 700*time.Millisecond)))
	inflight := sendInFlight(dnsAddr, "tcp")

	var exitErr error
	select {
	case exitErr = <-exited:
	case <-time.After(lameduck + shutdownGrace + 5*time.Second):
		t.Fatalf("still running %v after SIGTERM\n%s", time.Since(sigterm), stderr.String())
	}
	us, ts := udp.stop(), tcp.stop()
	res := <-inflight

	closedAt, ok := stderr.seen("shutting down")
	if !ok {
		t.Fatalf("no \"shutting down\" in the log:\n%s", stderr.String())
	}
	if exitErr != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", exitErr, stderr.String())
	}
	t.Logf("SIGTERM at 0; listeners closing at %v; exit at %v",
		closedAt.Sub(sigterm).Round(time.Millisecond), exitedAt.Sub(sigterm).Round(time.Millisecond))
	if closedAt.Sub(sigterm) < lameduck-100*time.Millisecond {
		t.Errorf("listeners closed %v after SIGTERM, before the %v lameduck ended", closedAt.Sub(sigterm), lameduck)
	}

	// Every query sent before the listeners closed was answered, bar those
	// sent in the last moments, which the closing socket may still hold
	// unread: allow 250 ms before the close (well inside the lameduck).
	// The close is no earlier than SIGTERM + lameduck, and no earlier than
	// the log line says (which may be read late).
	cutoff := minTime(closedAt, sigterm.Add(lameduck)).Add(-250 * time.Millisecond)
	for _, c := range []struct {
		what string
		s    loadStats
	}{{"udp", us}, {"tcp", ts}} {
		t.Logf("%s load: %s; last answered query sent at %v", c.what, c.s, c.s.LastAnsweredSentAt.Sub(sigterm).Round(time.Millisecond))
		if c.s.Wrong != 0 || c.s.Rcodes["NOERROR"] != c.s.Answered {
			t.Errorf("%s: %s\n%s", c.what, c.s, strings.Join(c.s.Samples, "\n"))
		}
		var dropped []string
		for _, at := range c.s.LostAt {
			if at.Before(cutoff) {
				dropped = append(dropped, at.Sub(sigterm).Round(time.Millisecond).String())
			}
		}
		if len(c.s.LostAt) > 0 {
			t.Logf("%s: the %d unanswered queries were sent from %v after SIGTERM on (cutoff %v)", c.what, len(c.s.LostAt),
				slices.MinFunc(c.s.LostAt, time.Time.Compare).Sub(sigterm).Round(time.Millisecond), cutoff.Sub(sigterm).Round(time.Millisecond))
		}
		if len(dropped) > 0 {
			t.Errorf("%s: %d queries sent before the listeners closed got no answer (sent at %v after SIGTERM)\n%s",
				c.what, len(dropped), dropped, strings.Join(c.s.Samples, "\n"))
		}
		if c.s.LastAnsweredSentAt.Sub(sigterm) < lameduck-500*time.Millisecond {
			t.Errorf("%s: no query sent after %v of the lameduck was answered", c.what, c.s.LastAnsweredSentAt.Sub(sigterm))
		}
	}
	res.check(t, sigterm, closedAt)
}

// inFlight is a forwarded query sent just before a shutdown.
type inFlight struct {
	proto    string
	sent, at time.Time
	r        *dns.Msg
	err      error
}

// sendInFlight sends a forwarded query (to a slow upstream) over proto and
// returns a channel with its outcome, waiting up to 5 s.
func sendInFlight(addr, proto string) <-chan inFlight {
	out := make(chan inFlight, 1)
	sent := time.Now()
	go func() {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("inflight-%s-%d.example.", proto, sent.UnixNano()), dns.TypeA)
		r, _, err := (&dns.Client{Net: proto, Timeout: 5 * time.Second}).Exchange(m, addr)
		out <- inFlight{proto: proto, sent: sent, at: time.Now(), r: r, err: err}
	}()
	return out
}

// check fails unless the query was answered with the upstream's answer.
func (f inFlight) check(t *testing.T, stop, closedAt time.Time) {
	t.Helper()
	rel := func(at time.Time) time.Duration { return at.Sub(stop).Round(time.Millisecond) }
	if f.err != nil || f.r.Rcode != dns.RcodeSuccess || firstA(f.r) != "192.0.2.1" {
		t.Errorf("a %s query in flight upstream when the listeners closed (sent at %v after the stop, listeners closing at %v): %v, want NOERROR 192.0.2.1",
			f.proto, rel(f.sent), rel(closedAt), f.err)
		return
	}
	t.Logf("the %s query in flight upstream: sent at %v, answered at %v (listeners closing at %v)",
		f.proto, rel(f.sent), rel(f.at), rel(closedAt))
}

// TestFaultShutdownAnswersUDPQueryInFlight stops svcdisc (as SIGTERM does:
// its context ends) while a UDP query waits on a slow upstream past the
// end of the lameduck. The shutdown waits for the queries in flight; the
// reply must reach the client too.
func TestFaultShutdownAnswersUDPQueryInFlight(t *testing.T) {
	up := startFaultyUpstream(t)
	up.mode.Store(upSlow)
	up.delay.Store(int64(1500 * time.Millisecond)) // within the 2 s forward deadline
	const lameduck = time.Second
	var log stampedLog
	log.first, log.pats = make(map[string]time.Time), []string{"shutting down"}
	r := serveFaults(t, fmt.Sprintf(`. {
    health 127.0.0.1:0 {
        lameduck %s
    }
    kubernetes cluster.local
    forward . %s
}
`, lameduck, up.addr), "../../examples", &log)
	addr := r.in.dnsAddr()
	stop := time.Now()
	r.cancel()
	time.Sleep(time.Until(stop.Add(lameduck - 700*time.Millisecond)))
	udp, tcp := sendInFlight(addr, "udp"), sendInFlight(addr, "tcp")
	ru, rt := <-udp, <-tcp
	closedAt, _ := log.seen("shutting down")
	rt.check(t, stop, closedAt)
	ru.check(t, stop, closedAt)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
