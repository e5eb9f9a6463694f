package forward

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Tests against a real authoritative server, Knot DNS (Debian package
// knot), run on loopback. Without knotd they skip, unless
// SVCDISC_REQUIRE_KNOT=1, when they fail.

const (
	bigA   = 150 // A records of big.example.test: about 2.4 kB, over 1232
	bigTXT = 12  // TXT records of txt.example.test, 200 bytes each
)

// exampleZone is the zone example.test: one of each common type, and
// RRsets too large for a 1232-byte UDP reply.
func exampleZone() string {
	var b strings.Builder
	b.WriteString(`$ORIGIN example.test.
$TTL 300
@       SOA   ns hostmaster 2026010101 3600 600 86400 60
@       NS    ns
@       MX    10 mail
ns      A     127.0.0.1
mail    A     192.0.2.25
www     A     192.0.2.10
www     AAAA  2001:db8::10
alias   CNAME www
`)
	for i := range bigA {
		fmt.Fprintf(&b, "big A 10.0.%d.%d\n", i/250, i%250+1)
	}
	for i := range bigTXT {
		fmt.Fprintf(&b, "txt TXT \"%02d%s\"\n", i, strings.Repeat("x", 198))
	}
	return b.String()
}

// emptyZone is the zone empty.test: an SOA and NS only, so every other
// name is NXDOMAIN.
const emptyZone = `$ORIGIN empty.test.
$TTL 300
@  SOA  ns.example.test. hostmaster.example.test. 7 3600 600 86400 60
@  NS   ns.example.test.
`

var knotOnce struct {
	sync.Mutex
	path string
}

// knotdPath finds knotd or skips (fails with SVCDISC_REQUIRE_KNOT=1).
func knotdPath(t testing.TB) string {
	t.Helper()
	knotOnce.Lock()
	defer knotOnce.Unlock()
	if knotOnce.path == "" {
		if p, err := exec.LookPath("knotd"); err == nil {
			knotOnce.path = p
		} else if _, err := os.Stat("/usr/sbin/knotd"); err == nil {
			knotOnce.path = "/usr/sbin/knotd"
		}
	}
	if knotOnce.path == "" {
		if os.Getenv("SVCDISC_REQUIRE_KNOT") == "1" {
			t.Fatal("knotd not found and SVCDISC_REQUIRE_KNOT=1 (apt-get install knot)")
		}
		t.Skip("knotd not found: install Debian's knot package to run the tests against a real DNS server")
	}
	return knotOnce.path
}

// startKnot runs knotd with the zones example.test and empty.test on a free
// loopback port, waits until it answers, stops it when the test ends, and
// returns its address.
func startKnot(t testing.TB) string {
	t.Helper()
	knotd := knotdPath(t)
	// Not t.TempDir(): its long name could make the control socket's path
	// too long for a Unix socket.
	dir, err := os.MkdirTemp("", "knot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"run", "db", "zones"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{"example.test": exampleZone(), "empty.test": emptyZone} {
		if err := os.WriteFile(filepath.Join(dir, "zones", name+".zone"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	conf := fmt.Sprintf(`server:
    rundir: "%[1]s/run"
    listen: 127.0.0.1@%[2]s
database:
    storage: "%[1]s/db"
control:
    listen: "%[1]s/run/knot.sock"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "%[1]s/zones"
    file: "%%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: example.test
  - domain: empty.test
`, dir, port)
	confPath := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(knotd, "-c", confPath)
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start knotd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	addr := "127.0.0.1:" + port
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeSOA)
		r, _, err := c.Exchange(m, addr)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
			return addr
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("knotd exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("knotd not answering on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKnotForwardsAnswers(t *testing.T) {
	addr := startKnot(t)
	f := newForwarder(t, Options{Upstreams: []string{addr}})
	cases := []struct {
		name  string
		qtype uint16
		check func(*dns.Msg) bool
	}{
		{"www.example.test.", dns.TypeA, func(m *dns.Msg) bool { return firstA(m) == "192.0.2.10" && len(m.Answer) == 1 }},
		{"WWW.Example.TEST.", dns.TypeA, func(m *dns.Msg) bool { return firstA(m) == "192.0.2.10" }},
		{"www.example.test.", dns.TypeAAAA, func(m *dns.Msg) bool {
			a, ok := m.Answer[0].(*dns.AAAA)
			return ok && a.AAAA.String() == "2001:db8::10"
		}},
		{"example.test.", dns.TypeMX, func(m *dns.Msg) bool {
			mx, ok := m.Answer[0].(*dns.MX)
			return ok && mx.Mx == "mail.example.test." && mx.Preference == 10
		}},
		{"alias.example.test.", dns.TypeA, func(m *dns.Msg) bool {
			c, ok := m.Answer[0].(*dns.CNAME)
			return ok && c.Target == "www.example.test." && firstA(m) == "192.0.2.10"
		}},
		{"www.example.test.", dns.TypeTXT, func(m *dns.Msg) bool { // NODATA: the SOA, no answer
			return len(m.Answer) == 0 && len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA
		}},
	}
	for _, c := range cases {
		req := query(c.name, c.qtype)
		req.Id = 777
		m, err := f.Exchange(context.Background(), req)
		if err != nil {
			t.Errorf("%s %s: %v", c.name, dns.TypeToString[c.qtype], err)
			continue
		}
		if m.Id != 777 || m.Rcode != dns.RcodeSuccess || !m.Authoritative || m.Question[0] != req.Question[0] {
			t.Errorf("%s %s: header/question: %v", c.name, dns.TypeToString[c.qtype], m)
			continue
		}
		if (len(m.Answer) == 0 && c.qtype != dns.TypeTXT) || !c.check(m) {
			t.Errorf("%s %s: %v", c.name, dns.TypeToString[c.qtype], m)
		}
	}
}

func TestKnotNXDOMAINWithSOA(t *testing.T) {
	addr := startKnot(t)
	f := newForwarder(t, Options{Upstreams: []string{addr}})
	for _, name := range []string{"nope.empty.test.", "nope.example.test."} {
		m, err := f.Exchange(context.Background(), query(name, dns.TypeA))
		if err != nil {
			t.Fatal(err)
		}
		if m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 || len(m.Ns) != 1 {
			t.Fatalf("%s: %v", name, m)
		}
		soa, ok := m.Ns[0].(*dns.SOA)
		if !ok || !dns.IsSubDomain(soa.Hdr.Name, name) {
			t.Errorf("%s: authority %v, want the zone's SOA", name, m.Ns)
		}
	}
}

func TestKnotTruncatedAnswerRetriedOverTCP(t *testing.T) {
	addr := startKnot(t)
	// Over UDP, with the buffer the forwarder offers, Knot truncates.
	direct := new(dns.Msg)
	direct.SetQuestion("big.example.test.", dns.TypeA)
	direct.SetEdns0(udpSize, false)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(direct, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated {
		t.Fatalf("knotd did not truncate a %d-record answer over UDP: the test proves nothing", bigA)
	}

	f := newForwarder(t, Options{Upstreams: []string{addr}})
	for _, c := range []struct {
		name  string
		qtype uint16
		n     int
	}{{"big.example.test.", dns.TypeA, bigA}, {"txt.example.test.", dns.TypeTXT, bigTXT}} {
		for _, edns := range []bool{false, true} {
			req := query(c.name, c.qtype)
			if edns {
				req.SetEdns0(512, false)
			}
			m, err := f.Exchange(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if m.Truncated || len(m.Answer) != c.n {
				t.Errorf("%s (EDNS %v): truncated %v, %d answers, want %d complete", c.name, edns, m.Truncated, len(m.Answer), c.n)
			}
			if (m.IsEdns0() != nil) != edns {
				t.Errorf("%s: OPT in the reply %v, in the query %v", c.name, m.IsEdns0() != nil, edns)
			}
		}
	}
	if st := f.Upstreams()[0]; st.Failures != 0 || st.Requests != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestKnotForceTCP(t *testing.T) {
	addr := startKnot(t)
	f := newForwarder(t, Options{Upstreams: []string{addr}, ForceTCP: true})
	m, err := f.Exchange(context.Background(), query("www.example.test.", dns.TypeA))
	if err != nil || firstA(m) != "192.0.2.10" {
		t.Fatalf("%v %v", m, err)
	}
	m, err = f.Exchange(context.Background(), query("big.example.test.", dns.TypeA))
	if err != nil || m.Truncated || len(m.Answer) != bigA {
		t.Fatalf("big over TCP: %v", err)
	}
}

func TestKnotServesWhileDeadPeerMarkedDown(t *testing.T) {
	addr := startKnot(t)
	// A second forwarder target that is not there: the forwarder must
	// mark it down and keep answering from Knot.
	dead := "127.0.0.1:" + freePort(t)
	f := newForwarder(t, Options{Upstreams: []string{dead, addr}, Policy: "sequential", HealthCheck: 20 * time.Millisecond, MaxFails: 2})
	m, err := f.Exchange(context.Background(), query("www.example.test.", dns.TypeA))
	if err != nil || firstA(m) != "192.0.2.10" {
		t.Fatalf("%v %v", m, err)
	}
	waitFor(t, 5*time.Second, "the dead upstream marked down", func() bool {
		h := healthy(f)
		return !h[dead] && h[addr]
	})
}
