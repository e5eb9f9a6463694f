package hosts

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// nextHandler marks queries handed on: it answers REFUSED with By "next".
type nextHandler struct{}

func (nextHandler) Name() string { return "next" }
func (nextHandler) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	return st.Error("next", dns.RcodeRefused)
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newHandler(t *testing.T, cfg config.Hosts) *Handler {
	t.Helper()
	if cfg.TTL == 0 {
		cfg.TTL = 3600
	}
	if cfg.Zones == nil {
		cfg.Zones = []string{"."}
	}
	h, err := New(&cfg, quiet(), nextHandler{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func ask(h plugin.Handler, name string, qtype uint16) (*dns.Msg, *plugin.State) {
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	st := plugin.NewState(r, ".", nil, "udp")
	return h.ServeDNS(context.Background(), st), st
}

// rrs renders a section without TTLs' padding, sorted, for comparison.
func rrs(section []dns.RR) []string {
	var out []string
	for _, rr := range section {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

type hostsCase struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	by     string // "hosts" when answered, "next" when handed on
	answer []string
}

func (tc hostsCase) check(t *testing.T, h plugin.Handler) {
	t.Helper()
	m, st := ask(h, tc.qname, tc.qtype)
	if m.Rcode != tc.rcode || st.By != tc.by {
		t.Fatalf("rcode %s by %q, want %s by %q", dns.RcodeToString[m.Rcode], st.By, dns.RcodeToString[tc.rcode], tc.by)
	}
	if tc.by == Name && tc.rcode == dns.RcodeSuccess && !m.Authoritative {
		t.Errorf("answer is not authoritative")
	}
	if tc.rcode == dns.RcodeServerFailure && m.Authoritative {
		t.Errorf("SERVFAIL has AA set")
	}
	if got := rrs(m.Answer); !slices.Equal(got, tc.answer) {
		t.Errorf("answer = %q, want %q", got, tc.answer)
	}
	if len(m.Ns) != 0 || len(m.Extra) != 0 {
		t.Errorf("authority %v, additional %v: want none", m.Ns, m.Extra)
	}
	if st.NoFast {
		t.Errorf("NoFast set: hosts answers depend on the question only")
	}
}

func TestHostsAnswers(t *testing.T) {
	h := newHandler(t, config.Hosts{Path: "testdata/hosts", Zones: []string{"example.org.", "localhost."},
		Inline: []string{"10.0.0.5 web.example.org inline.example.org", "192.0.2.1 other.example.com"}})
	for _, tc := range []hostsCase{
		{name: "A of a name with several addresses, the file's then the Corefile's", qname: "web.example.org.", qtype: dns.TypeA, by: Name,
			answer: []string{"web.example.org. 3600 IN A 10.0.0.1", "web.example.org. 3600 IN A 10.0.0.2", "web.example.org. 3600 IN A 10.0.0.5"}},
		{name: "names are matched in any case", qname: "WEB.Example.ORG.", qtype: dns.TypeAAAA, by: Name,
			answer: []string{"web.example.org. 3600 IN AAAA fd00::1"}},
		{name: "inline entry", qname: "inline.example.org.", qtype: dns.TypeA, by: Name, answer: []string{"inline.example.org. 3600 IN A 10.0.0.5"}},
		{name: "AAAA of a name with only A is NODATA", qname: "v4only.example.org.", qtype: dns.TypeAAAA, by: Name},
		{name: "A of a name with only AAAA is NODATA", qname: "v6only.example.org.", qtype: dns.TypeA, by: Name},
		{name: "MX of a known name is NODATA", qname: "web.example.org.", qtype: dns.TypeMX, by: Name},
		{name: "unknown name in the zones is SERVFAIL without fallthrough", qname: "nope.example.org.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, by: Name},
		{name: "unknown type of an unknown name is SERVFAIL too", qname: "nope.example.org.", qtype: dns.TypeTXT, rcode: dns.RcodeServerFailure, by: Name},
		{name: "name outside the zones goes on", qname: "outside.example.net.", qtype: dns.TypeA, rcode: dns.RcodeRefused, by: "next"},
		{name: "entries outside the zones are ignored", qname: "other.example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused, by: "next"},
		{name: "relative alias is not under the zones", qname: "web.", qtype: dns.TypeA, rcode: dns.RcodeRefused, by: "next"},
		{name: "wildcard covers one label", qname: "x.apps.example.org.", qtype: dns.TypeA, by: Name, answer: []string{"x.apps.example.org. 3600 IN A 10.0.0.9"}},
		{name: "explicit name wins over the wildcard", qname: "named.apps.example.org.", qtype: dns.TypeA, by: Name, answer: []string{"named.apps.example.org. 3600 IN A 10.0.0.10"}},
		{name: "wildcard does not cover the apex", qname: "apps.example.org.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, by: Name},
		{name: "wildcard does not cover two labels", qname: "a.b.apps.example.org.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, by: Name},
		{name: "wildcard name has NODATA for AAAA", qname: "y.apps.example.org.", qtype: dns.TypeAAAA, by: Name},
		{name: "PTR of an IPv4 address lists all its names", qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, by: Name,
			answer: []string{"1.0.0.10.in-addr.arpa. 3600 IN PTR web.example.org."}},
		{name: "PTR of an inline address", qname: "5.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, by: Name,
			answer: []string{"5.0.0.10.in-addr.arpa. 3600 IN PTR inline.example.org.", "5.0.0.10.in-addr.arpa. 3600 IN PTR web.example.org."}},
		{name: "PTR of an IPv6 address", qname: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR, by: Name,
			answer: []string{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 3600 IN PTR web.example.org."}},
		{name: "PTR of localhost", qname: "1.0.0.127.in-addr.arpa.", qtype: dns.TypePTR, by: Name,
			answer: []string{"1.0.0.127.in-addr.arpa. 3600 IN PTR localhost."}},
		{name: "wildcard entries make no PTR", qname: "9.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused, by: "next"},
		{name: "PTR of an unknown address goes on even without fallthrough", qname: "99.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused, by: "next"},
		{name: "A of a reverse name outside the zones goes on", qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypeA, rcode: dns.RcodeRefused, by: "next"},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, h) })
	}
}

func TestHostsOptions(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Hosts
		hostsCase
	}{
		{name: "ttl", cfg: config.Hosts{TTL: 60, Inline: []string{"10.0.0.1 a.example"}},
			hostsCase: hostsCase{qname: "a.example.", qtype: dns.TypeA, by: Name, answer: []string{"a.example. 60 IN A 10.0.0.1"}}},
		{name: "no_reverse makes no PTR", cfg: config.Hosts{NoReverse: true, Inline: []string{"10.0.0.1 a.example"}},
			hostsCase: hostsCase{qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused, by: "next"}},
		{name: "fallthrough hands on an unknown name", cfg: config.Hosts{Fallthrough: []string{"."}, Inline: []string{"10.0.0.1 a.example"}},
			hostsCase: hostsCase{qname: "b.example.", qtype: dns.TypeA, rcode: dns.RcodeRefused, by: "next"}},
		{name: "fallthrough still answers NODATA for a known name", cfg: config.Hosts{Fallthrough: []string{"."}, Inline: []string{"10.0.0.1 a.example"}},
			hostsCase: hostsCase{qname: "a.example.", qtype: dns.TypeAAAA, by: Name}},
		{name: "fallthrough limited to other zones gives SERVFAIL", cfg: config.Hosts{Fallthrough: []string{"in-addr.arpa."}, Inline: []string{"10.0.0.1 a.example"}},
			hostsCase: hostsCase{qname: "b.example.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, by: Name}},
		{name: "fallthrough_unsupported hands on other types of a known name",
			cfg:       config.Hosts{Fallthrough: []string{"."}, FallthroughUnsupported: true, Inline: []string{"10.0.0.1 a.example"}},
			hostsCase: hostsCase{qname: "a.example.", qtype: dns.TypeHTTPS, rcode: dns.RcodeRefused, by: "next"}},
		{name: "fallthrough_unsupported keeps NODATA for AAAA", cfg: config.Hosts{Fallthrough: []string{"."}, FallthroughUnsupported: true, Inline: []string{"10.0.0.1 a.example"}},
			hostsCase: hostsCase{qname: "a.example.", qtype: dns.TypeAAAA, by: Name}},
		{name: "missing file serves the inline entries", cfg: config.Hosts{Path: "testdata/does-not-exist", Inline: []string{"10.0.0.1 a.example"}},
			hostsCase: hostsCase{qname: "a.example.", qtype: dns.TypeA, by: Name, answer: []string{"a.example. 3600 IN A 10.0.0.1"}}},
		{name: "zoned IPv6 entry", cfg: config.Hosts{Inline: []string{"fe80::1%eth0 link.example"}},
			hostsCase: hostsCase{qname: "link.example.", qtype: dns.TypeAAAA, by: Name, answer: []string{"link.example. 3600 IN AAAA fe80::1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Path == "" {
				tt.cfg.Path = "testdata/does-not-exist"
			}
			tt.check(t, newHandler(t, tt.cfg))
		})
	}
}

func TestHostsReply(t *testing.T) {
	h := newHandler(t, config.Hosts{Path: "testdata/hosts"})
	r := new(dns.Msg)
	r.SetQuestion("localhost.", dns.TypeA)
	r.SetEdns0(4096, true)
	m := h.ServeDNS(context.Background(), plugin.NewState(r, ".", nil, "udp"))
	if m.Id != r.Id || !m.Response || !m.RecursionDesired || m.RecursionAvailable || !m.Authoritative {
		t.Errorf("header %+v: want the query's ID and RD, QR and AA set, RA clear", m.MsgHdr)
	}
	if opt := m.IsEdns0(); opt == nil || !opt.Do() {
		t.Errorf("reply OPT %v: want one with DO", opt)
	}
}

func TestUnreadableFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Hosts{Path: filepath.Join(dir, "sub\x00dir"), TTL: 3600, Zones: []string{"."}}
	if _, err := New(&cfg, quiet(), nil); err == nil {
		t.Fatal("New succeeded on a path that cannot be looked at")
	}
}

// TestReloadPicksUpAChangedFile changes, removes and brings back the file
// while Run runs.
func TestReloadPicksUpAChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	write := func(text string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// Same size, new time: the change must be seen from the time alone.
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Now().Add(-time.Hour)
	write("10.0.0.1 a.example\n", base)
	h := newHandler(t, config.Hosts{Path: path, Reload: 10 * time.Millisecond, Inline: []string{"10.9.9.9 inline.example"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			m, _ := ask(h, name, dns.TypeA)
			got := ""
			if len(m.Answer) > 0 {
				got = m.Answer[0].(*dns.A).A.String()
			}
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %q, want %q", name, got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("a.example.", "10.0.0.1")
	write("10.0.0.2 a.example\n", base.Add(time.Minute))
	waitFor("a.example.", "10.0.0.2")
	write("10.0.0.3 b.example\n", base.Add(2*time.Minute))
	waitFor("b.example.", "10.0.0.3")
	if m, _ := ask(h, "a.example.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("a.example. after it left the file: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	// A removed file keeps its last entries, as in CoreDNS; inline ones stay.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	waitFor("b.example.", "10.0.0.3")
	waitFor("inline.example.", "10.9.9.9")
	write("10.0.0.4 b.example\n", base.Add(3*time.Minute))
	waitFor("b.example.", "10.0.0.4")
}

func TestReloadZeroReadsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte("10.0.0.1 a.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, config.Hosts{Path: path})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h.Run(ctx) // returns at once with reload 0
	if ctx.Err() != nil {
		t.Fatal("Run with reload 0 waited for the context")
	}
	if m, _ := ask(h, "a.example.", dns.TypeA); len(m.Answer) != 1 {
		t.Fatalf("answer %v, want the file's address", m.Answer)
	}
}
