package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"sigs.k8s.io/yaml"
)

// queryFrom is query over UDP from the local address from.
func queryFrom(t *testing.T, from, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Skipf("querying from %s: %v (no such loopback address here?)", from, err)
	}
	return r
}

func answers(m *dns.Msg) string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return dns.RcodeToString[m.Rcode] + " " + strings.Join(out, " | ")
}

func TestAutoPathEndToEnd(t *testing.T) {
	old := hostResolvConf
	hostResolvConf = "testdata/autopath/no-such-resolv.conf" // no host search domains
	t.Cleanup(func() { hostResolvConf = old })
	up := startUpstream(t)
	r, _ := serveCorefileOn(t, fmt.Sprintf(`. {
    prometheus 127.0.0.1:0
    autopath @kubernetes
    kubernetes cluster.local {
        pods verified
    }
    forward . %s
    cache 30
}
`, up.addr), "testdata/autopath")
	addr := r.in.dnsAddr()
	const ext = "api.github.com.shop.svc.cluster.local."
	want := "NOERROR " + ext + " 30 IN CNAME api.github.com. | api.github.com. 30 IN A 192.0.2.1"
	// Repeats go the way a kept reply would (fast path, cache): each is
	// completed again, for the shop Pod only.
	for i := range 3 {
		if got := answers(queryFrom(t, "127.0.0.1", addr, ext, dns.TypeA)); got != want {
			t.Fatalf("shop Pod, try %d: %s\nwant %s", i, got, want)
		}
		if got := answers(queryFrom(t, "127.0.0.2", addr, ext, dns.TypeA)); got != "NXDOMAIN " {
			t.Fatalf("bank Pod asking shop's search domain, try %d: %s, want NXDOMAIN (never shop's search path)", i, got)
		}
	}
	if got := answers(queryFrom(t, "127.0.0.1", addr, ext, dns.TypeAAAA)); got != "NOERROR "+ext+" 5 IN CNAME api.github.com." {
		t.Errorf("AAAA (NODATA upstream): %s", got)
	}
	if got := answers(queryFrom(t, "127.0.0.2", addr, "db.bank.svc.cluster.local.bank.svc.cluster.local.", dns.TypeA)); !strings.Contains(got, "CNAME db.bank.svc.cluster.local. | db.bank.svc.cluster.local. 5 IN A 10.96.20.10") {
		t.Errorf("bank Pod, a cluster name: %s", got)
	}
	if got := answers(queryFrom(t, "127.0.0.1", addr, "web.shop.svc.cluster.local.", dns.TypeA)); got != "NOERROR web.shop.svc.cluster.local. 5 IN A 10.96.10.10" {
		t.Errorf("a name that exists as asked: %s", got)
	}
	if got := answers(queryFrom(t, "127.0.0.3", addr, ext, dns.TypeA)); got != "NXDOMAIN " {
		t.Errorf("an address that is no Pod's: %s", got)
	}
	body := metricsText(t, "http://"+r.httpAddr(t, "/metrics")+"/metrics")
	for _, want := range []string{`svcdisc_autopath_total{result="completed",`, `svcdisc_autopath_total{result="skipped",`, "svcdisc_dns_search_expansions_total{"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func metricsText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeployClusterRoleLetsAutopathWatchPods: autopath @kubernetes needs
// pods verified, which watches Pods; deploy/dns's ClusterRole must grant
// list and watch on them, or the watch fails and nothing is completed.
func TestDeployClusterRoleLetsAutopathWatchPods(t *testing.T) {
	b, err := os.ReadFile("../../deploy/dns/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var role struct {
			Kind  string
			Rules []struct {
				APIGroups []string `json:"apiGroups"`
				Resources []string
				Verbs     []string
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		if role.Kind != "ClusterRole" {
			continue
		}
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, "pods") &&
				slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch") {
				return
			}
		}
		t.Fatalf("deploy/dns ClusterRole grants no list and watch on pods: %+v", role.Rules)
	}
	t.Fatal("deploy/dns/rbac.yaml has no ClusterRole")
}

// TestSearchExpansionsAreCountedWithoutAutopath: the search-path waste is
// visible before an operator turns autopath on. Each client NXDOMAIN below
// the cluster zone counts, whether the general path or the fast path
// (repeats) answers it; names that exist, NODATA and reverse names do not.
func TestSearchExpansionsAreCountedWithoutAutopath(t *testing.T) {
	r, _ := serveCorefileOn(t, `. {
    prometheus 127.0.0.1:0
    kubernetes cluster.local in-addr.arpa
}
`, "testdata/autopath")
	addr := r.in.dnsAddr()
	for _, q := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"api.github.com.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError},
		{"api.github.com.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError},
		{"api.github.com.svc.cluster.local.", dns.TypeAAAA, dns.RcodeNameError},
		{"web.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess},
		{"web.shop.svc.cluster.local.", dns.TypeMX, dns.RcodeSuccess},
		{"9.9.9.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError},
	} {
		if m := queryFrom(t, "127.0.0.1", addr, q.name, q.qtype); m.Rcode != q.rcode {
			t.Fatalf("%s %s: %s, want %s", q.name, dns.TypeToString[q.qtype], dns.RcodeToString[m.Rcode], dns.RcodeToString[q.rcode])
		}
	}
	body := metricsText(t, "http://"+r.httpAddr(t, "/metrics")+"/metrics")
	if got := metricSum(t, body, "svcdisc_dns_search_expansions_total"); got != 3 {
		t.Errorf("svcdisc_dns_search_expansions_total = %v, want 3\n%s", got, body)
	}
}

// metricSum is the sum of the samples of family in a /metrics body.
func metricSum(t *testing.T, body, family string) float64 {
	t.Helper()
	sum := 0.0
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, family+"{") && !strings.HasPrefix(l, family+" ") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		sum += v
	}
	return sum
}
