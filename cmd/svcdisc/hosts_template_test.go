package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
)

// TestHostsAndTemplateEndToEnd serves a block with templates, hosts and
// forward and asks it over UDP.
func TestHostsAndTemplateEndToEnd(t *testing.T) {
	up := startUpstream(t)
	hostsFile := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hostsFile, []byte("10.1.0.1 web.hosts.test\nfd00::1 v6.hosts.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := serveCorefile(t, fmt.Sprintf(`. {
    errors
    template IN AAAA hosts.test {
        match ^web[.]
        rcode NOERROR
        fallthrough
    }
    template IN A tmpl.test {
        match ^ip-(?P<a>[0-9]+)[.]tmpl[.]test[.]$
        answer "{{ .Name }} 60 IN A 10.0.0.{{ .Group.a }}"
        additional "extra.tmpl.test. 60 IN TXT \"{{ .Remote }}\""
        fallthrough
    }
    template IN ANY cname.test {
        answer "cname.test. 60 IN CNAME web.hosts.test."
    }
    hosts %s hosts.test {
        192.0.2.10 inline.hosts.test
        ttl 30
        reload 20ms
        fallthrough
    }
    forward . %s
}
`, hostsFile, up.addr))
	addr := r.in.dnsAddr()

	type want struct {
		rcode  int
		aa     bool
		answer []string
		extra  []string
	}
	check := func(name string, qtype uint16, w want) {
		t.Helper()
		m := query(t, "udp", addr, name, qtype)
		var answer, extra []string
		for _, rr := range m.Answer {
			answer = append(answer, strings.Join(strings.Fields(rr.String()), " "))
		}
		for _, rr := range m.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				extra = append(extra, strings.Join(strings.Fields(rr.String()), " "))
			}
		}
		if m.Rcode != w.rcode || m.Authoritative != w.aa || !slices.Equal(answer, w.answer) || !slices.Equal(extra, w.extra) {
			t.Errorf("%s %s: %s aa=%v %q %q, want %s aa=%v %q %q", name, dns.TypeToString[qtype],
				dns.RcodeToString[m.Rcode], m.Authoritative, answer, extra, dns.RcodeToString[w.rcode], w.aa, w.answer, w.extra)
		}
	}

	check("web.hosts.test.", dns.TypeA, want{aa: true, answer: []string{"web.hosts.test. 30 IN A 10.1.0.1"}})
	check("inline.hosts.test.", dns.TypeA, want{aa: true, answer: []string{"inline.hosts.test. 30 IN A 192.0.2.10"}})
	check("v6.hosts.test.", dns.TypeAAAA, want{aa: true, answer: []string{"v6.hosts.test. 30 IN AAAA fd00::1"}})
	// The AAAA template takes web.* before hosts could answer it.
	check("web.hosts.test.", dns.TypeAAAA, want{aa: true})
	check("inline.hosts.test.", dns.TypeMX, want{aa: true})
	check("10.2.0.192.in-addr.arpa.", dns.TypePTR, want{aa: true, answer: []string{"10.2.0.192.in-addr.arpa. 30 IN PTR inline.hosts.test."}})
	// Unknown to hosts: falls through to forward.
	check("other.hosts.test.", dns.TypeA, want{answer: []string{"other.hosts.test. 300 IN A 192.0.2.1"}})
	check("ip-7.tmpl.test.", dns.TypeA, want{aa: true, answer: []string{"ip-7.tmpl.test. 60 IN A 10.0.0.7"},
		extra: []string{`extra.tmpl.test. 60 IN TXT "127.0.0.1"`}})
	check("www.tmpl.test.", dns.TypeA, want{answer: []string{"www.tmpl.test. 300 IN A 192.0.2.1"}})
	// The CNAME's target is resolved through the block: hosts answers it.
	check("cname.test.", dns.TypeA, want{aa: true, answer: []string{"cname.test. 60 IN CNAME web.hosts.test.", "web.hosts.test. 30 IN A 10.1.0.1"}})

	// A changed hosts file is read again.
	later := time.Now().Add(time.Minute)
	if err := os.WriteFile(hostsFile, []byte("10.1.0.2 web.hosts.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(hostsFile, later, later); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the changed hosts file", func() bool {
		return firstA(query(t, "udp", addr, "web.hosts.test.", dns.TypeA)) == "10.1.0.2"
	})
}

func TestHostsFileThatCannotBeLookedAtFailsTheStart(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("Corefile", strings.NewReader(fmt.Sprintf(". {\n    hosts %s/hosts\n}\n", notDir)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = start(context.Background(), cfg, serveFlags{dnsAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "Corefile:1: hosts: line 2: hosts file") {
		t.Fatalf("start = %v, want an error naming the block and the hosts file", err)

	}
}

func TestMissingHostsFileIsNotAnError(t *testing.T) {
	r, _ := serveCorefile(t, fmt.Sprintf(". {\n    hosts %s {\n        192.0.2.10 inline.test\n    }\n}\n", filepath.Join(t.TempDir(), "absent")))
	if got := firstA(query(t, "udp", r.in.dnsAddr(), "inline.test.", dns.TypeA)); got != "192.0.2.10" {
		t.Fatalf("inline.test. A = %q, want the inline entry", got)
	}
}
