package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// chainNames walks a chain through each handler's Next field.
func chainNames(h plugin.Handler) []string {
	var names []string
	for h != nil {
		names = append(names, h.Name())
		v := reflect.ValueOf(h).Elem().FieldByName("Next")
		if !v.IsValid() || v.IsNil() {
			break
		}
		h = v.Interface().(plugin.Handler)
	}
	return names
}

func TestChainRunsInTheFixedOrderWhateverTheCorefileOrder(t *testing.T) {
	cfg, err := config.Parse("Corefile", strings.NewReader(`.:53 {
    forward . 192.0.2.53
    minimal
    chaos
    any
    loadbalance
    log
    cache 30
    errors
    bufsize 1232
    forward example.org 192.0.2.54
}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := build(cfg, serveFlags{dnsAddr: "127.0.0.1:0"}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	got := chainNames(p.blocks["127.0.0.1:0"][0].Chain)
	want := []string{"bufsize", "errors", "log", "any", "chaos", "loadbalance", "cache", "minimal", "forward", "forward"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("chain %v, want %v (config.Order)", got, want)
	}
}

func TestStubDomainBlocksShareOneMetricsListener(t *testing.T) {
	up1, up2 := startUpstream(t), startUpstream(t)
	// The stub-domain layout of the Kubernetes DNS docs, with prometheus,
	// health and ready repeated in both blocks on the same addresses: it
	// used to panic at start.
	r, _ := serveCorefile(t, fmt.Sprintf(`corp.example:53 {
    errors
    prometheus 127.0.0.1:0
    health 127.0.0.1:0
    forward . %s
}
.:53 {
    errors
    health 127.0.0.1:0
    ready 127.0.0.1:0
    prometheus 127.0.0.1:0
    kubernetes cluster.local
    forward . %s
}
`, up1.addr, up2.addr))
	addr := r.in.dnsAddr()
	if m := query(t, "udp", addr, "host.corp.example.", dns.TypeA); m.Rcode != dns.RcodeSuccess || up1.calls.Load() != 1 {
		t.Fatalf("stub domain: %v, upstream 1 saw %d queries", m, up1.calls.Load())
	}
	if m := query(t, "udp", addr, "www.example.com.", dns.TypeA); m.Rcode != dns.RcodeSuccess || up2.calls.Load() != 1 {
		t.Fatalf("default: %v, upstream 2 saw %d queries", m, up2.calls.Load())
	}
	if len(r.in.probes) != 1 {
		t.Errorf("%d HTTP listeners, want 1 shared by metrics, health and ready", len(r.in.probes))
	}
	resp, err := http.Get("http://" + r.httpAddr(t, "/metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, up := range []string{up1.addr, up2.addr} {
		if !strings.Contains(string(body), `svcdisc_forward_requests_total{to="`+up+`"} 1`) {
			t.Errorf("metrics lack one request to %s:\n%s", up, grepLines(string(body), "svcdisc_forward_requests_total"))
		}
	}
}

// Several forwards are tried in the order written, each taking the names of
// its zone, as in CoreDNS: a "forward ." written first would take them all.
func TestSeveralForwardsInABlockEachTakeTheirZone(t *testing.T) {
	corp, rest := startUpstream(t), startUpstream(t)
	r, _ := serveCorefile(t, fmt.Sprintf(`.:53 {
    kubernetes cluster.local
    forward corp.example %s
    forward . %s
}
`, corp.addr, rest.addr))
	addr := r.in.dnsAddr()
	query(t, "udp", addr, "a.corp.example.", dns.TypeA)
	query(t, "udp", addr, "b.corp.example.", dns.TypeA)
	query(t, "udp", addr, "www.example.com.", dns.TypeA)
	if corp.calls.Load() != 2 || rest.calls.Load() != 1 {
		t.Errorf("corp upstream saw %d, the other %d; want 2 and 1", corp.calls.Load(), rest.calls.Load())
	}
	if m := query(t, "udp", addr, "web.shop.svc.cluster.local.", dns.TypeA); firstA(m) == "" {
		t.Errorf("cluster name not answered by kubernetes: %v", m)
	}
}

func chQuery(t *testing.T, addr, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	c := &dns.Client{Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestChaosClassIsAnsweredByChaosAndNeverForwarded(t *testing.T) {
	up := startUpstream(t)
	r, _ := serveCorefile(t, fmt.Sprintf(".:53 {\n    chaos v9 alice bob\n    forward . %s\n}\n", up.addr))
	addr := r.in.dnsAddr()
	m := chQuery(t, addr, "version.bind.")
	if len(m.Answer) != 1 || m.Answer[0].(*dns.TXT).Txt[0] != "v9" || m.Answer[0].Header().Class != dns.ClassCHAOS {
		t.Errorf("version.bind: %v", m)
	}
	if m := chQuery(t, addr, "authors.bind."); len(m.Answer) != 2 {
		t.Errorf("authors.bind: %v", m)
	}
	if m := chQuery(t, addr, "other.bind."); m.Rcode != dns.RcodeRefused {
		t.Errorf("another CH name: rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
	if up.calls.Load() != 0 {
		t.Errorf("the upstream saw %d CH queries, want none", up.calls.Load())
	}

	up2 := startUpstream(t)
	r2, _ := serveCorefile(t, fmt.Sprintf(".:53 {\n    forward . %s\n}\n", up2.addr))
	if m := chQuery(t, r2.in.dnsAddr(), "version.bind."); m.Rcode != dns.RcodeRefused || up2.calls.Load() != 0 {
		t.Errorf("without chaos: %v, upstream saw %d; want REFUSED and none", m, up2.calls.Load())
	}
}

func TestAnyIsAnsweredWithHINFO(t *testing.T) {
	r, _ := serveCorefile(t, ".:53 {\n    any\n    kubernetes cluster.local\n}\n")
	m := query(t, "udp", r.in.dnsAddr(), "web.shop.svc.cluster.local.", dns.TypeANY)
	h, ok := m.Answer[0].(*dns.HINFO)
	if len(m.Answer) != 1 || !ok || h.Cpu != "ANY obsoleted" || h.Os != "See RFC 8482" || h.Hdr.Ttl != 8482 {
		t.Errorf("ANY: %v", m)
	}
}

func TestMinimalDropsAdditionalRecordsOfPositiveAnswersOnly(t *testing.T) {
	for _, minimal := range []bool{false, true} {
		conf := ".:53 {\n    kubernetes cluster.local\n}\n"
		if minimal {
			conf = ".:53 {\n    minimal\n    kubernetes cluster.local\n}\n"
		}
		r, _ := serveCorefile(t, conf)
		addr := r.in.dnsAddr()
		for range 3 { // the fast path's kept reply too
			srv := query(t, "udp", addr, "_postgres._tcp.db.data.svc.cluster.local.", dns.TypeSRV)
			if len(srv.Answer) == 0 {
				t.Fatalf("SRV: %v", srv)
			}
			if got := len(srv.Extra) > 0; got == minimal {
				t.Errorf("minimal=%v: SRV additional section %v", minimal, srv.Extra)
			}
			nx := query(t, "udp", addr, "nope.data.svc.cluster.local.", dns.TypeA)
			if nx.Rcode != dns.RcodeNameError || len(nx.Ns) != 1 {
				t.Errorf("minimal=%v: NXDOMAIN lost its SOA: %v", minimal, nx)
			}
		}
	}
}
