package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
)

// testCorefile moves a Corefile's HTTP endpoints to free loopback ports, so
// tests never collide with each other or with services on the machine.
func testCorefile(corefile string) string {
	for _, from := range []string{"health {", "ready\n", "prometheus :9153"} {
		to := strings.Replace(from, "health", "health 127.0.0.1:0", 1)
		to = strings.Replace(to, "ready\n", "ready 127.0.0.1:0\n", 1)
		to = strings.Replace(to, ":9153", "127.0.0.1:0", 1)
		corefile = strings.Replace(corefile, from, to, 1)
	}
	return corefile
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(append([]string{"svcdisc"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	badConf := filepath.Join(dir, "Corefile")
	os.WriteFile(badConf, []byte(".:53 {\n    errors\n    rewrite name a\n}\n"), 0o644)
	brokenManifests := filepath.Join(dir, "broken.yaml")
	os.WriteFile(brokenManifests, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: a\n"), 0o644)

	cases := []struct {
		name       string
		args       []string
		code       int
		stdoutHas  string
		stderrHas  string
		stderrLine bool // stderr must be exactly one line
	}{
		{name: "version prints the version", args: []string{"version"}, stdoutHas: "svcdisc "},
		{name: "help lists the commands", args: []string{"--help"}, stdoutHas: "serve"},
		{name: "serve help lists its flags", args: []string{"serve", "--help"}, stdoutHas: "--dns-addr"},
		{name: "an unknown flag exits 1 with one line", args: []string{"serve", "--bogus"}, code: 1,
			stderrHas: "flag provided but not defined", stderrLine: true},
		{name: "an unknown command exits 1", args: []string{"frobnicate"}, code: 1, stderrHas: "frobnicate"},
		{name: "a bad Corefile names file and line", args: []string{"serve", "--conf", badConf, "--manifests", "../../examples", "--dns-addr", "127.0.0.1:0"},
			code: 1, stderrHas: badConf + ":3: ", stderrLine: true},
		{name: "a missing Corefile is an error", args: []string{"serve", "--conf", filepath.Join(dir, "nope")}, code: 1, stderrLine: true},
		{name: "no object source is an error", args: []string{"serve", "--dns-addr", "127.0.0.1:0"}, code: 1,
			stderrHas: "no object source", stderrLine: true},
		{name: "broken manifests at start are an error naming the file", args: []string{"serve", "--manifests", brokenManifests, "--dns-addr", "127.0.0.1:0"},
			code: 1, stderrHas: "broken.yaml"},
		{name: "a bad listen address is an error", args: []string{"serve", "--manifests", "../../examples", "--dns-addr", "nonsense"},
			code: 1, stderrHas: "nonsense", stderrLine: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tc.args...)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.stdoutHas) {
				t.Errorf("stdout %q does not contain %q", stdout, tc.stdoutHas)
			}
			if !strings.Contains(stderr, tc.stderrHas) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.stderrHas)
			}
			if tc.stderrLine && strings.Count(strings.TrimSuffix(stderr, "\n"), "\n") != 0 {
				t.Errorf("stderr is not one line:\n%s", stderr)
			}
		})
	}
}

func query(t *testing.T, proto, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", proto, name, err)
	}
	return r
}

func firstA(r *dns.Msg) string {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func copyExamples(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644)
	}
	return dir
}

// TestServeFollowsManifests runs the built-in configuration on a copy of
// examples/ and edits the files under it.
func TestServeFollowsManifests(t *testing.T) {
	dir := copyExamples(t)
	cfg, err := config.Parse("Corefile", strings.NewReader(testCorefile(config.Default)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	inst, err := start(ctx, cfg, serveFlags{manifests: dir, dnsAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- inst.wait(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	addr := inst.dnsAddr()

	for _, proto := range []string{"udp", "tcp"} {
		if got := firstA(query(t, proto, addr, "web.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.10" {
			t.Fatalf("%s: web A = %q, want 10.96.10.10", proto, got)
		}
	}

	shop := filepath.Join(dir, "shop.yaml")
	orig, _ := os.ReadFile(shop)
	os.WriteFile(shop, bytes.ReplaceAll(orig, []byte("10.96.10.20"), []byte("10.96.10.21")), 0o644)
	waitFor(t, time.Second, "edited cluster IP served", func() bool {
		return firstA(query(t, "udp", addr, "api.shop.svc.cluster.local.", dns.TypeA)) == "10.96.10.21"
	})

	os.WriteFile(shop, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: web\n"), 0o644)
	time.Sleep(300 * time.Millisecond) // let the watcher see the broken file
	if got := firstA(query(t, "udp", addr, "api.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.21" {
		t.Fatalf("after a broken edit api A = %q, want the last good 10.96.10.21", got)
	}

	os.WriteFile(filepath.Join(dir, "new.yaml"), []byte(`apiVersion: v1
kind: Service
metadata: {name: fresh, namespace: shop}
spec: {clusterIP: 10.96.99.1}
`), 0o644)
	waitFor(t, time.Second, "new file served", func() bool {
		return firstA(query(t, "udp", addr, "fresh.shop.svc.cluster.local.", dns.TypeA)) == "10.96.99.1"
	})
	os.Remove(filepath.Join(dir, "new.yaml"))
	waitFor(t, time.Second, "deleted file withdrawn", func() bool {
		return query(t, "udp", addr, "fresh.shop.svc.cluster.local.", dns.TypeA).Rcode == dns.RcodeNameError
	})
}

// TestSIGTERMStopsCleanly runs the real binary and stops it with SIGTERM.
func TestSIGTERMStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "svcdisc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	conf := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(conf, []byte(testCorefile(config.Default)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd := exec.Command(bin, "serve", "--conf", conf, "--manifests", "../../examples", "--dns-addr", "127.0.0.1:0")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "server start", func() bool { return strings.Contains(stderr.String(), "serving DNS") })
	cmd.Process.Signal(syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("still running 10s after SIGTERM")
	}
}

// lockedBuffer is a bytes.Buffer a child process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
