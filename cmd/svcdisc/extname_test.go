package main

import (
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// extUpstream is an in-process upstream for example.com: db has an A and an
// AAAA (the A's address can be changed), gone does not exist, broken fails.
type extUpstream struct {
	addr  string
	a     atomic.Pointer[string]
	calls atomic.Int32
}

const extSOA = "example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 1 7200 1800 86400 60"

func startExtUpstream(t *testing.T) *extUpstream {
	t.Helper()
	u := &extUpstream{}
	a := "192.0.2.10"
	u.a.Store(&a)
	// A UDP and a TCP listener on one port (for queries that came over
	// TCP): a few tries, since the TCP port may be taken.
	var (
		pc net.PacketConn
		l  net.Listener
	)
	for try := 0; l == nil; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		u.addr = pc.LocalAddr().String()
		if l, err = net.Listen("tcp", u.addr); err != nil {
			pc.Close()
			if try == 10 {
				t.Fatal(err)
			}
		}
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		u.calls.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		add := func(sec *[]dns.RR, s string) {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Error(err)
				return
			}
			*sec = append(*sec, rr)
		}
		switch q.Name {
		case "db.example.com.":
			switch q.Qtype {
			case dns.TypeA:
				add(&m.Answer, "db.example.com. 300 IN A "+*u.a.Load())
			case dns.TypeAAAA:
				add(&m.Answer, "db.example.com. 300 IN AAAA 2001:db8::10")
			default:
				add(&m.Ns, extSOA)
			}
		case "gone.example.com.":
			m.Rcode = dns.RcodeNameError
			add(&m.Ns, extSOA)
		default:
			m.Rcode = dns.RcodeServerFailure
		}
		w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: l, Handler: handler}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

func TestExternalNameTargetIsResolvedThroughForward(t *testing.T) {
	up := startExtUpstream(t)
	r, _ := serveCorefileOn(t, fmt.Sprintf(`. {
    kubernetes cluster.local {
        ttl 30
    }
    forward . %s
}
`, up.addr), "testdata/extname")
	addr := r.in.dnsAddr()
	const cname = "outside.shop.svc.cluster.local.\t30\tIN\tCNAME\tdb.example.com."
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer []string
		ns     []string
	}{
		{"A: the CNAME and the target's A", "outside.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, true,
			[]string{cname, "db.example.com.\t300\tIN\tA\t192.0.2.10"}, nil},
		{"AAAA: the CNAME and the target's AAAA", "outside.shop.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, true,
			[]string{cname, "db.example.com.\t300\tIN\tAAAA\t2001:db8::10"}, nil},
		{"through an in-cluster ExternalName: both CNAMEs and the A", "alias.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, true,
			[]string{"alias.shop.svc.cluster.local.\t30\tIN\tCNAME\toutside.shop.svc.cluster.local.", cname,
				"db.example.com.\t300\tIN\tA\t192.0.2.10"}, nil},
		{"a type the target lacks: NODATA with the CNAME and the target's SOA", "outside.shop.svc.cluster.local.", dns.TypeMX,
			dns.RcodeSuccess, true, []string{cname}, []string{extSOA}},
		{"a target that does not exist upstream: NXDOMAIN with the CNAME and the target's SOA", "gone.shop.svc.cluster.local.", dns.TypeA,
			dns.RcodeNameError, true, []string{"gone.shop.svc.cluster.local.\t30\tIN\tCNAME\tgone.example.com."}, []string{extSOA}},
		{"a target whose upstream fails: SERVFAIL", "broken.shop.svc.cluster.local.", dns.TypeA,
			dns.RcodeServerFailure, false, nil, nil},
		{"a CNAME query: the CNAME alone", "outside.shop.svc.cluster.local.", dns.TypeCNAME, dns.RcodeSuccess, true,
			[]string{cname}, nil},
	}
	for _, proto := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				m := query(t, proto, addr, tt.qname, tt.qtype)
				if m.Rcode != tt.rcode || m.Authoritative != tt.aa || m.Truncated {
					t.Errorf("rcode %s AA %v TC %v, want %s %v false\n%v", dns.RcodeToString[m.Rcode], m.Authoritative,
						m.Truncated, dns.RcodeToString[tt.rcode], tt.aa, m)
				}
				if got := rrStrings(t, m.Answer); !slices.Equal(got, tt.answer) {
					t.Errorf("answer:\n%q\nwant\n%q", got, tt.answer)
				}
				if got := rrStrings(t, m.Ns); !slices.Equal(got, normal(t, tt.ns)) {
					t.Errorf("authority:\n%q\nwant\n%q", got, tt.ns)
				}
			})
		}
	}

	// The reply holds the upstream's data: the fast path must not keep it,
	// so a change upstream shows at once (there is no cache here).
	for range 3 {
		query(t, "udp", addr, "outside.shop.svc.cluster.local.", dns.TypeA)
	}
	changed := "192.0.2.99"
	up.a.Store(&changed)
	if got := firstA(query(t, "udp", addr, "outside.shop.svc.cluster.local.", dns.TypeA)); got != changed {
		t.Errorf("after the upstream changed, A = %s, want %s: a kept reply was answered", got, changed)
	}
}

func TestExternalNameLookupGoesThroughCache(t *testing.T) {
	up := startExtUpstream(t)
	r, _ := serveCorefileOn(t, fmt.Sprintf(`. {
    kubernetes cluster.local {
        ttl 30
    }
    forward . %s
    cache 30
}
`, up.addr), "testdata/extname")
	addr := r.in.dnsAddr()
	for range 3 {
		m := query(t, "udp", addr, "outside.shop.svc.cluster.local.", dns.TypeA)
		if got := firstA(m); got != "192.0.2.10" {
			t.Fatalf("A = %q\n%v", got, m)
		}
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("upstream saw %d queries, want 1: the cache answers the target's repeats", n)
	}
}

func TestExternalNameWithoutForwardIsTheCNAMEAlone(t *testing.T) {
	r, _ := serveCorefileOn(t, ". {\n    kubernetes cluster.local {\n        ttl 30\n    }\n}\n", "testdata/extname")
	m := query(t, "udp", r.in.dnsAddr(), "outside.shop.svc.cluster.local.", dns.TypeA)
	want := []string{"outside.shop.svc.cluster.local.\t30\tIN\tCNAME\tdb.example.com."}
	if got := rrStrings(t, m.Answer); m.Rcode != dns.RcodeSuccess || !m.Authoritative || !slices.Equal(got, want) || len(m.Ns) != 0 {
		t.Errorf("rcode %s AA %v answer %q authority %v; want NOERROR, AA, %q and no authority",
			dns.RcodeToString[m.Rcode], m.Authoritative, got, m.Ns, want)
	}
}

func rrStrings(t *testing.T, rrs []dns.RR) []string {
	t.Helper()
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

// normal returns records in presentation form as miekg/dns prints them.
func normal(t *testing.T, rrs []string) []string {
	t.Helper()
	var out []string
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rr.String())
	}
	return out
}
