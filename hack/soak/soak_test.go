package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		src, name, typ string
		class, expect  string
	}{
		{"a", "svc-1.ns-1.svc.cluster.local", "A", classA, "NOERROR"},
		{"srv", "_http._tcp.svc-1.ns-1.svc.cluster.local", "SRV", classSRV, "NOERROR"},
		{"external", "host-3.example.test", "A", classExternal, "NOERROR"},
		// nxdomain.txt: the found names of a search-path lookup...
		{"nxdomain", "svc-1.ns-1.svc.cluster.local", "A", classA, "NOERROR"},
		{"nxdomain", "SVC-1.NS-1.svc.Cluster.Local.", "A", classA, "NOERROR"},
		// ...and its expansions.
		{"nxdomain", "svc-1.ns-1.svc.cluster.local.ns-7.svc.cluster.local", "A", classSearchNX, "NXDOMAIN"},
		{"nxdomain", "svc-1.ns-1.svc.cluster.local.svc.cluster.local", "A", classSearchNX, "NXDOMAIN"},
		{"nxdomain", "svc-1.ns-1.svc.cluster.local.cluster.local", "A", classSearchNX, "NXDOMAIN"},
		{"nxdomain", "svc-1.ns-1.ns-7.svc.cluster.local", "A", classSearchNX, "NXDOMAIN"},
		{"nxdomain", "ns-1.svc.cluster.local", "A", classSearchNX, "NXDOMAIN"},
	}
	for _, tt := range tests {
		q := classify(tt.src, tt.name, tt.typ, "cluster.local")
		if q.Class != tt.class || q.Expect != tt.expect {
			t.Errorf("classify(%s, %s) = %s %s, want %s %s", tt.src, tt.name, q.Class, q.Expect, tt.class, tt.expect)
		}
	}
}

func TestParseShares(t *testing.T) {
	got, err := parseShares(" a=4, srv=0 ,external=1")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"a": 4, "srv": 0, "external": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "a=0", "a", "a=x", "a=-1", "nope=3"} {
		if _, err := parseShares(bad); err == nil {
			t.Errorf("parseShares(%q): no error", bad)
		}
	}
}

func TestMixKeepsSharesAndOrder(t *testing.T) {
	src := func(name string, n int) []query {
		var qs []query
		for i := range n {
			qs = append(qs, query{Name: name + string(rune('a'+i)), Type: "A"})
		}
		return qs
	}
	sources := map[string][]query{"a": src("a", 3), "nxdomain": src("n", 5), "srv": src("s", 2), "external": src("e", 1)}
	got := mix(sources, map[string]int{"a": 2, "nxdomain": 1, "srv": 1, "external": 0}, 12)
	var names []string
	for _, q := range got {
		names = append(names, q.Name)
	}
	// Shares 2:1:1, each source in its own order and wrapping around.
	want := strings.Fields("aa ab na sa ac aa nb sb ab ac nc sa")
	if !reflect.DeepEqual(names, want) {
		t.Errorf("mix = %v\nwant %v", names, want)
	}
	if got := mix(sources, map[string]int{"external": 0}, 5); got != nil {
		t.Errorf("no weights: %v", got)
	}
}

func TestRunMix(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.txt":        "svc-1.ns-1.svc.cluster.local A\n",
		"nxdomain.txt": "svc-2.ns-2.ns-9.svc.cluster.local A\nsvc-2.ns-2.svc.cluster.local A\n",
		"srv.txt":      "_http._tcp.svc-1.ns-1.svc.cluster.local SRV\n",
		"external.txt": "# comment\nhost-1.example.test A\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, classes := filepath.Join(dir, "mixed.txt"), filepath.Join(dir, "classes.tsv")
	if err := runMix([]string{"-queries", dir, "-out", out, "-classes", classes, "-lines", "10", "-shares", "a=1,nxdomain=2,srv=1,external=1"}); err != nil {
		t.Fatal(err)
	}
	mixed, _ := os.ReadFile(out)
	if n := strings.Count(string(mixed), "\n"); n != 10 {
		t.Errorf("%d lines, want 10:\n%s", n, mixed)
	}
	f, err := os.Open(classes)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	expect, err := readClasses(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"svc-1.ns-1.svc.cluster.local a":              "NOERROR",
		"svc-2.ns-2.ns-9.svc.cluster.local a":         "NXDOMAIN",
		"svc-2.ns-2.svc.cluster.local a":              "NOERROR",
		"_http._tcp.svc-1.ns-1.svc.cluster.local srv": "NOERROR",
		"host-1.example.test a":                       "NOERROR",
	}
	if len(expect) != len(want) {
		t.Errorf("classes: %v", expect)
	}
	for k, rc := range want {
		if expect[k].Expect != rc {
			t.Errorf("%s: expect %q, want %q", k, expect[k].Expect, rc)
		}
	}
	if err := runMix([]string{"-queries", filepath.Join(dir, "missing"), "-out", out, "-classes", classes}); err == nil {
		t.Error("no error for a missing queries directory")
	}
}

func TestHistPercentiles(t *testing.T) {
	var h hist
	for us := int64(1); us <= 100; us++ {
		h.add(us)
	}
	if got := h.percentile(0.5); got != 50 {
		t.Errorf("p50 = %d, want 50", got)
	}
	if got := h.percentile(0.99); got != 99 {
		t.Errorf("p99 = %d, want 99", got)
	}
	h.add(250_000) // past the fine buckets: 1 ms resolution
	if got := h.percentile(1); got != 250_000 || h.max != 250_000 {
		t.Errorf("p100 = %d, max %d, want 250000", got, h.max)
	}
	// Lost queries are slower than any answer: 2 of 103 lost puts p99 among them.
	h.lost = 2
	if got := h.percentile(0.99); got != -1 {
		t.Errorf("p99 with 2%% lost = %d, want -1 (lost)", got)
	}
	if got := h.percentile(0.5); got != 52 {
		t.Errorf("p50 with lost = %d, want 52", got)
	}
	var empty hist
	if got := empty.percentile(0.5); got != -1 {
		t.Errorf("empty p50 = %d", got)
	}
	var m hist
	m.add(7)
	m.merge(&h)
	if m.n != h.n+1 || m.lost != 2 || m.max != 250_000 || m.coarse[150] != 1 {
		t.Errorf("merge: n %d lost %d max %d", m.n, m.lost, m.max)
	}
}

// dnsperfOutput is what dnsperf -v -S 2 prints, shortened.
const dnsperfOutput = `DNS Performance Testing Tool
[Status] Command line: dnsperf -s 127.0.0.1 -v -S 2
> NOERROR svc-1.ns-1.svc.cluster.local A 0.000100
> NXDOMAIN svc-1.ns-1.ns-9.svc.cluster.local A 0.000200
> SERVFAIL host-1.example.test A 0.000300
> T _http._tcp.svc-1.ns-1.svc.cluster.local SRV
1795651364.841333: 2.000000
> NOERROR SVC-1.ns-1.svc.cluster.local A 0.001000
> NOERROR svc-1.ns-1.ns-9.svc.cluster.local A 0.002000
> NOERROR svc-1.ns-1.svc.cluster.local A 0.003000
> NOERROR svc-1.ns-1.svc.cluster.local A 0.004000
> NOERROR svc-1.ns-1.svc.cluster.local A 0.005000
> NOERROR svc-1.ns-1.svc.cluster.local A 0.006000
> NOERROR svc-1.ns-1.svc.cluster.local A 0.007000
> NOERROR svc-1.ns-1.svc.cluster.local A 0.008000
> NOERROR svc-1.ns-1.svc.cluster.local A 0.009000
> NOERROR svc-1.ns-1.svc.cluster.local A 0.010000
> NOERROR svc-1.ns-1.svc.cluster.local A 0.011000
1795651366.841333: 5.500000
> NOERROR other.example A 0.000050
> bogus
[Status] Testing complete (time limit)
  Queries lost:         1 (6.67%)
`

func TestStats(t *testing.T) {
	expect := map[string]query{}
	for _, q := range []query{
		{"svc-1.ns-1.svc.cluster.local", "A", classA, "NOERROR"},
		{"svc-1.ns-1.ns-9.svc.cluster.local", "A", classSearchNX, "NXDOMAIN"},
		{"host-1.example.test", "A", classExternal, "NOERROR"},
		{"_http._tcp.svc-1.ns-1.svc.cluster.local", "SRV", classSRV, "NOERROR"},
	} {
		expect[strings.ToLower(q.key())] = q
	}
	var pass strings.Builder
	s := newStats(expect, &pass)
	for _, l := range strings.Split(strings.TrimSuffix(dnsperfOutput, "\n"), "\n") {
		s.line(l)
	}
	s.finish()
	if !strings.Contains(pass.String(), "Queries lost:") || strings.Contains(pass.String(), "> ") || strings.Contains(pass.String(), "1795651364") {
		t.Errorf("passthrough:\n%s", pass.String())
	}
	// The one answer after the last marker is under 10% of the interval
	// before: it is folded into it.
	if len(s.intervals) != 2 {
		t.Fatalf("%d intervals, want 2", len(s.intervals))
	}
	first, second := s.intervals[0], s.intervals[1]
	if first.n != 3 || first.lost != 1 || first.unexpected != 1 || first.qps != "2.000000" {
		t.Errorf("first interval: n %d lost %d unexpected %d qps %s", first.n, first.lost, first.unexpected, first.qps)
	}
	if second.n != 12 || second.lost != 0 || second.unexpected != 2 || second.percentile(0.5) != 5000 || second.max != 11000 {
		t.Errorf("second interval: n %d unexpected %d p50 %d max %d", second.n, second.unexpected, second.percentile(0.5), second.max)
	}
	if s.badLines != 1 || s.unexpected != 3 {
		t.Errorf("bad lines %d, unexpected %d", s.badLines, s.unexpected)
	}
	a := s.classes[classA]
	if a.answered != 11 || a.unexpected != 0 || a.rcodes["NOERROR"] != 11 {
		t.Errorf("cluster-a: %+v", a)
	}
	if nx := s.classes[classSearchNX]; nx.answered != 2 || nx.unexpected != 1 {
		t.Errorf("search-nx: %+v", nx)
	}
	if srv := s.classes[classSRV]; srv.lost != 1 || srv.answered != 0 {
		t.Errorf("cluster-srv: %+v", srv)
	}
	if u := s.classes["unknown"]; u == nil || u.unexpected != 1 {
		t.Errorf("unknown: %+v", u)
	}

	dir := t.TempDir()
	if err := s.write(dir, 2); err != nil {
		t.Fatal(err)
	}
	summary, _ := os.ReadFile(filepath.Join(dir, "summary.env"))
	for _, want := range []string{"SENT=16\n", "ANSWERED=15\n", "LOST=1\n", "UNEXPECTED=3\n", "P99_US=lost\n", "MAX_US=11000\n", "INTERVALS=2\n"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary.env lacks %q:\n%s", want, summary)
		}
	}
	intervals, _ := os.ReadFile(filepath.Join(dir, "intervals.tsv"))
	lines := strings.Split(strings.TrimSpace(string(intervals)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "1\t0\t2\t2.000000\t3\t1\t1\t") || !strings.HasPrefix(lines[2], "2\t2\tend\t") {
		t.Errorf("intervals.tsv:\n%s", intervals)
	}
	classes, _ := os.ReadFile(filepath.Join(dir, "classes.tsv"))
	if !strings.Contains(string(classes), "search-nx\tNXDOMAIN\t2\t2\t0\t1\tNOERROR=1 NXDOMAIN=1\n") {
		t.Errorf("classes.tsv:\n%s", classes)
	}
}

func TestStatsKeepsALongTail(t *testing.T) {
	s := newStats(nil, nil)
	s.line("> NOERROR x A 0.000001")
	s.line("1795651364.841333: 1.0")
	s.line("> NOERROR x A 0.000002")
	s.finish()
	if len(s.intervals) != 2 || s.intervals[1].qps != "-" {
		t.Fatalf("intervals: %d", len(s.intervals))
	}
}

func TestRunStats(t *testing.T) {
	dir := t.TempDir()
	classes := filepath.Join(dir, "classes.tsv")
	os.WriteFile(classes, []byte("svc-1.ns-1.svc.cluster.local\tA\tcluster-a\tNOERROR\n"), 0o644)
	in := strings.NewReader("> NOERROR svc-1.ns-1.svc.cluster.local A 0.000100\nStatistics:\n")
	if err := runStats([]string{"-classes", classes, "-out", dir, "-interval", "5", "-passthrough", filepath.Join(dir, "p.txt")}, in); err != nil {
		t.Fatal(err)
	}
	p, _ := os.ReadFile(filepath.Join(dir, "p.txt"))
	if string(p) != "Statistics:\n" {
		t.Errorf("passthrough %q", p)
	}
	os.WriteFile(classes, []byte("no tabs\n"), 0o644)
	if err := runStats([]string{"-classes", classes, "-out", dir}, strings.NewReader("")); err == nil {
		t.Error("no error for a bad classes file")
	}
}

func TestMarker(t *testing.T) {
	for l, want := range map[string]bool{
		"1795651364.841333: 1999.714184": true,
		"1795651364: 1999.714184":        false,
		"  Queries sent:         6000":   false,
		"[Status] Started at: Thu":       false,
	} {
		if _, ok := marker(l); ok != want {
			t.Errorf("marker(%q) = %v, want %v", l, ok, want)
		}
	}
}

func TestGoroutineTotal(t *testing.T) {
	n, err := goroutineTotal(strings.NewReader("goroutine profile: total 16\n4 @ 0x49036e\n"))
	if err != nil || n != 16 {
		t.Errorf("got %d, %v", n, err)
	}
	for _, bad := range []string{"", "heap profile: 1\n", "goroutine profile: total x\n"} {
		if _, err := goroutineTotal(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("debug") != "1" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("goroutine profile: total 42\n"))
	}))
	defer srv.Close()
	if err := runGoroutines([]string{"-url", srv.URL + "/debug/pprof/goroutine?debug=1"}); err != nil {
		t.Error(err)
	}
	if err := runGoroutines([]string{"-url", srv.URL + "/nope"}); err == nil {
		t.Error("no error for a 404")
	}
}

func TestProbe(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc("found.test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "found.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(192, 0, 2, 1)})
		w.WriteMsg(m)
	})
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go srv.ActivateAndServe()
	defer srv.Shutdown()
	addr := pc.LocalAddr().String()
	if err := probe(addr, "found.test", "a", time.Second); err != nil {
		t.Errorf("found.test A: %v", err)
	}
	if err := probe(addr, "found.test", "AAAA", time.Second); err == nil {
		t.Error("found.test AAAA: no error for an answer without AAAA")
	}
	if err := probe(addr, "missing.test", "A", time.Second); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Errorf("missing.test: %v", err)
	}
	if err := probe(addr, "found.test", "BOGUS", time.Second); err == nil {
		t.Error("no error for an unknown type")
	}
}
