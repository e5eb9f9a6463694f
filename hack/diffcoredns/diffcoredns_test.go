package main

// TestSameAnswersAsCoreDNS runs every testdata/*.case against CoreDNS and
// svcdisc. It needs a CoreDNS binary ($SVCDISC_COREDNS, else the one
// hack/diffcoredns.sh build caches) and an API server
// ($SVCDISC_TEST_KUBECONFIG, from hack/testenv.sh); without either it skips,
// saying so, unless SVCDISC_REQUIRE_COREDNS=1 or SVCDISC_REQUIRE_KUBE=1
// makes the missing one a failure.

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/internal/harness"
)

func TestSameAnswersAsCoreDNS(t *testing.T) {
	coredns := harness.NeedCoreDNS(t)
	kubeconfig := harness.NeedKube(t)
	cases, err := LoadCases("testdata")
	if err != nil {
		t.Fatal(err)
	}
	svcdisc, err := buildSvcdisc(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{CoreDNS: coredns, Svcdisc: svcdisc, Kubeconfig: kubeconfig, Logf: t.Logf}
	if err := env.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			env := *env
			env.Logf = t.Logf
			res, err := env.Run(context.Background(), c, t.TempDir())
			if res != nil {
				var b strings.Builder
				res.Print(&b, testing.Verbose())
				t.Log("\n" + b.String())
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range res.Rows {
				switch row.Status {
				case Different:
					t.Errorf("%s: svcdisc and CoreDNS differ: %s", row.Query, strings.Join(diff(row.CoreDNS, row.Svcdisc), "; "))
				case NowSame:
					t.Logf("%s: listed as a difference (%s), but the answers are the same now: drop it from the differences section", row.Query, row.Reason)
				}
			}
		})
	}
}

// The parts that need neither CoreDNS nor an API server.

func TestParseCases(t *testing.T) {
	cases, err := LoadCases("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.Description == "" {
			t.Errorf("%s: no description before the first section", c.File)
		}
	}
	_, err = ParseCase("x.case", "-- Corefile --\n. {}\n-- queries --\na. A\n-- differences --\nb. A -> why\n")
	if err == nil || !strings.Contains(err.Error(), "not a query") {
		t.Errorf("a difference for no query: %v", err)
	}
	q, err := ParseQuery("Web.{NS}.svc.cluster.local.  srv IN +tcp +bufsize=4096 +anyttl")
	if err != nil || q.Type != dns.TypeSRV || !q.TCP || q.BufSize != 4096 || !q.AnyTTL || q.Line != "Web.{NS}.svc.cluster.local. srv IN +tcp +bufsize=4096 +anyttl" {
		t.Errorf("ParseQuery: %+v, %v", q, err)
	}
}

func TestExpand(t *testing.T) {
	funcs := map[string]func(string) (string, error){"REV": reverseName}
	got, err := expand("{REV:{IP}} in {NS}", map[string]string{"IP": "10.96.0.10", "NS": "a"}, funcs)
	if err != nil || got != "10.0.96.10.in-addr.arpa. in a" {
		t.Errorf("expand: %q, %v", got, err)
	}
	if _, err := expand("{NOPE}", nil, nil); err == nil {
		t.Error("an unknown placeholder expanded")
	}
}

func TestCoreDNSCorefileBinds(t *testing.T) {
	in := ".:53 {\n    errors\n    health {\n        lameduck 5s\n    }\n}\nexample.corp:53 {\n    forward . 127.0.0.1:5300\n}\n"
	want := ".:53 {\n    bind 127.0.0.1\n    errors\n    health {\n        lameduck 5s\n    }\n}\nexample.corp:53 {\n    bind 127.0.0.1\n    forward . 127.0.0.1:5300\n}\n"
	if got := coreDNSCorefile(in); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestUpstream(t *testing.T) {
	u, err := startUpstream([]string{
		"example.org. 3600 IN SOA ns.example.org. host.example.org. 1 7200 1800 86400 60",
		"www.example.org. 300 IN A 192.0.2.10",
		"alias.example.org. 300 IN CNAME www.example.org.",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, tc := range []struct {
		name   string
		qtype  uint16
		rcode  string
		answer int
	}{
		{"www.example.org.", dns.TypeA, "NOERROR", 1},
		{"WWW.example.org.", dns.TypeAAAA, "NOERROR", 0},
		{"alias.example.org.", dns.TypeA, "NOERROR", 2},
		{"nope.example.org.", dns.TypeA, "NXDOMAIN", 0},
	} {
		a := ask(u.Addr, Query{Name: tc.name, Type: tc.qtype, Class: dns.ClassINET, TCP: tc.qtype == dns.TypeAAAA})
		if a.Rcode != tc.rcode || len(a.Answer) != tc.answer || a.Flags != "aa ra" {
			t.Errorf("%s %s: %s", tc.name, dns.TypeToString[tc.qtype], a)
		}
		if tc.answer == 0 && len(a.Authority) != 1 {
			t.Errorf("%s: no SOA: %s", tc.name, a)
		}
	}
}
