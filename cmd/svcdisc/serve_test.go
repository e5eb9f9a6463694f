package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/svcdisc/svcdisc/config"
)

// upstream is an in-process DNS server answering every A query with
// 192.0.2.1, counting queries; relay, when set, forwards instead.
type upstream struct {
	addr  string
	calls atomic.Int32
	relay atomic.Pointer[string]
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.addr = startDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		u.calls.Add(1)
		if to := u.relay.Load(); to != nil {
			c := &dns.Client{Timeout: 500 * time.Millisecond}
			if resp, _, err := c.Exchange(r, *to); err == nil {
				w.WriteMsg(resp)
			}
			return
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		if r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	return u
}

// startDNS serves h over UDP on a loopback port until the test ends, and
// returns the address.
func startDNS(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

type running struct {
	in     *instance
	cancel context.CancelFunc
	done   chan error
}

// serveCorefile starts svcdisc on corefile (written to a file, so reload can
// watch it) serving examples/.
func serveCorefile(t *testing.T, corefile string) (*running, string) {
	t.Helper()
	return serveCorefileOn(t, corefile, "../../examples")
}

// serveCorefileOn is serveCorefile serving the manifests in dir.
func serveCorefileOn(t *testing.T, corefile, manifests string) (*running, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in, err := start(ctx, cfg, serveFlags{conf: path, manifests: manifests, dnsAddr: "127.0.0.1:0"},
		slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &running{in: in, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.wait(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r, path
}

// httpAddr returns the address of the HTTP endpoint serving path.
func (r *running) httpAddr(t *testing.T, path string) string {
	t.Helper()
	for _, p := range r.in.probes {
		resp, err := http.Get("http://" + p.Addr() + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				return p.Addr()
			}
		}
	}
	t.Fatalf("no endpoint serves %s", path)
	return ""
}

func TestForwardingAndCacheEndToEnd(t *testing.T) {
	up := startUpstream(t)
	r, _ := serveCorefile(t, fmt.Sprintf(`. {
    prometheus 127.0.0.1:0
    pprof 127.0.0.1:0
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . %s
    cache 30
}
`, up.addr))
	addr := r.in.dnsAddr()
	for range 3 {
		if got := firstA(query(t, "udp", addr, "www.example.org.", dns.TypeA)); got != "192.0.2.1" {
			t.Fatalf("forwarded A = %q", got)
		}
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("upstream saw %d queries, want 1: the cache answers repeats", n)
	}
	if got := firstA(query(t, "tcp", addr, "web.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.10" {
		t.Fatalf("cluster A = %q", got)
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatal("a cluster name reached the upstream")
	}
	// Over UDP, repeats of a cluster name are answered by the fast path;
	// they are counted like any other.
	for range 3 {
		if got := firstA(query(t, "udp", addr, "api.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.20" {
			t.Fatalf("cluster A over UDP = %q", got)
		}
	}
	resp, err := http.Get("http://" + r.httpAddr(t, "/debug/pprof/") + "/debug/pprof/cmdline")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pprof: %v %v", resp, err)
	}
	resp.Body.Close()

	// The metrics endpoint parses and counts what happened.
	resp, err = http.Get("http://" + r.httpAddr(t, "/metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	sum := func(name string, match map[string]string) float64 {
		var total float64
		for _, m := range families[name].GetMetric() {
			ok := true
			for k, v := range match {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				ok = ok && found
			}
			if ok {
				total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return total
	}
	checks := []struct {
		name  string
		match map[string]string
		want  float64
	}{
		{"svcdisc_dns_requests_total", map[string]string{"type": "A"}, 7},
		{"svcdisc_dns_requests_total", map[string]string{"type": "A", "proto": "udp"}, 6},
		{"svcdisc_dns_responses_total", map[string]string{"plugin": "forward", "rcode": "NOERROR"}, 1},
		{"svcdisc_dns_responses_total", map[string]string{"plugin": "cache"}, 2},
		{"svcdisc_dns_responses_total", map[string]string{"plugin": "kubernetes"}, 4},
		{"svcdisc_cache_hits_total", nil, 2},
		{"svcdisc_cache_misses_total", nil, 1},
		{"svcdisc_cache_entries", map[string]string{"type": "success"}, 1},
		{"svcdisc_forward_requests_total", map[string]string{"to": up.addr}, 1},
		{"svcdisc_forward_healthy", map[string]string{"to": up.addr}, 1},
		{"svcdisc_kubernetes_synced", nil, 1},
	}
	for _, c := range checks {
		if got := sum(c.name, c.match); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.match, got, c.want)
		}
	}
	if families["svcdisc_dns_request_duration_seconds"] == nil || families["svcdisc_build_info"] == nil {
		t.Error("request duration histogram or build info missing")
	}
}

func TestForwardingToItselfIsRefusedAtStart(t *testing.T) {
	l, _ := net.ListenPacket("udp", "127.0.0.1:0")
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	cfg, err := config.Parse("Corefile", strings.NewReader(fmt.Sprintf(". {\n    forward . 127.0.0.1:%d\n}\n", port)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = start(context.Background(), cfg, serveFlags{dnsAddr: fmt.Sprintf("127.0.0.1:%d", port)}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "Corefile:2") {
		t.Fatalf("start = %v, want an error naming the forward line", err)
	}
}

func TestLoopIsDetected(t *testing.T) {
	relay := startUpstream(t)
	cfg, err := config.Parse("Corefile", strings.NewReader(fmt.Sprintf(". {\n    forward . %s\n    loop\n}\n", relay.addr)))
	if err != nil {
		t.Fatal(err)
	}
	// Pick the address first, so the relay can point back at us before the
	// probe. The port is free for UDP when picked; TCP on it may be taken
	// by another process meanwhile, so try a few.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var in *instance
	for attempt := 0; ; attempt++ {
		l, _ := net.ListenPacket("udp", "127.0.0.1:0")
		self := l.LocalAddr().String()
		l.Close()
		relay.relay.Store(&self)
		in, err = start(ctx, cfg, serveFlags{dnsAddr: self}, slog.New(slog.DiscardHandler))
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == 10 {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- in.wait(ctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "loop detected") {
			t.Fatalf("stopped with %v, want a loop error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a forwarding loop was not detected")
	}
}

func TestLameduckOrdering(t *testing.T) {
	r, _ := serveCorefile(t, `. {
    health 127.0.0.1:0 {
        lameduck 1s
    }
    ready 127.0.0.1:0
    kubernetes cluster.local
}
`)
	addr := r.in.dnsAddr()
	readyAddr := r.httpAddr(t, "/ready")
	healthAddr := r.httpAddr(t, "/health")
	get := func(addr, path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get(readyAddr, "/ready") != http.StatusOK || get(healthAddr, "/health") != http.StatusOK {
		t.Fatal("not ready and healthy before shutdown")
	}
	stopped := time.Now()
	r.cancel()
	waitFor(t, 300*time.Millisecond, "/ready failing at once", func() bool { return get(readyAddr, "/ready") == http.StatusServiceUnavailable })
	if get(healthAddr, "/health") != http.StatusOK {
		t.Error("/health failed during lameduck; only /ready should")
	}
	for time.Since(stopped) < 700*time.Millisecond {
		if got := firstA(query(t, "udp", addr, "web.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.10" {
			t.Fatalf("during lameduck web A = %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-r.done:
		t.Fatal("stopped before the lameduck ended")
	default:
	}
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop after the lameduck")
	}
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
	if _, _, err := c.Exchange(m, addr); err == nil {
		t.Fatal("still answering after shutdown")
	}
}

func TestReloadAppliesAGoodCorefileAndKeepsTheOldOnAMistake(t *testing.T) {
	const conf = `. {
    reload 2s 1s
    kubernetes cluster.local {
        ttl %d
    }
}
`
	r, path := serveCorefile(t, fmt.Sprintf(conf, 5))
	addr := r.in.dnsAddr()
	ttl := func() uint32 {
		m := query(t, "udp", addr, "web.shop.svc.cluster.local.", dns.TypeA)
		if len(m.Answer) == 0 {
			return 0
		}
		return m.Answer[0].Header().Ttl
	}
	if ttl() != 5 {
		t.Fatalf("ttl %d before reload", ttl())
	}
	// A broken Corefile is rejected; answers never stop meanwhile.
	os.WriteFile(path, []byte(strings.Replace(fmt.Sprintf(conf, 5), "ttl 5", "ttl many", 1)), 0o644)
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got := ttl(); got != 5 {
			t.Fatalf("after a broken Corefile ttl = %d, want the running 5", got)
		}
	}
	// A good one is applied without a gap.
	os.WriteFile(path, []byte(fmt.Sprintf(conf, 17)), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := ttl()
		if got == 17 {
			break
		}
		if got != 5 || time.Now().After(deadline) {
			t.Fatalf("during reload ttl = %d, want 5 then 17", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
