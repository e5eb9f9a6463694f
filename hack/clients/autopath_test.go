package clients

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// completedLookups are the lookups autopath must bring to at most 2
// queries (A and AAAA) for a client Pod (issue 14): an external name and
// the partly qualified Service names.
var completedLookups = []string{"host web", "host web.shop", "host web.shop.svc", "host www.example.com"}

// metricsRequests counts the queries that reached svcdisc: the sum of its
// svcdisc_dns_requests_total, fetched in the namespace by the test process
// itself (httpIn: no process to start for each count).
func metricsRequests(n *ns) func(t *testing.T) int {
	hc := httpIn(n.pid)
	read := func(t *testing.T) int {
		t.Helper()
		resp, err := hc.Get("http://127.0.0.1:9153/metrics")
		if err != nil {
			t.Fatalf("svcdisc's metrics: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("svcdisc's metrics: %v", err)
		}
		sum := 0
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "svcdisc_dns_requests_total{") {
				continue
			}
			f := strings.Fields(l)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", l, err)
			}
			sum += int(v)
		}
		return sum
	}
	// svcdisc counts a query once its reply is written (the duration
	// includes the write), so the client can be done a moment before the
	// count moves: read until two reads 20 ms apart agree.
	return func(t *testing.T) int {
		t.Helper()
		last := read(t)
		for range 50 {
			time.Sleep(20 * time.Millisecond)
			n := read(t)
			if n == last {
				return n
			}
			last = n
		}
		return last
	}
}

func TestRealClientsWithAutopath(t *testing.T) {
	start := time.Now()
	n, bin, svcdisc, gai, testdata := setup(t)
	// The nameserver's address is the client's source address on lo: a
	// second and a third address for a client that is no Pod's and one
	// that is a hostNetwork Pod's. With a non-loopback IPv4 address glibc's
	// getaddrinfo (AI_ADDRCONFIG) would ask A only: an IPv6 one too keeps
	// it asking A and AAAA, as in the run without these addresses.
	for _, a := range []string{"10.1.0.2/32", "10.1.0.3/32", "fd00:1::2/128"} {
		argv := []string{"ip", "addr", "add", a, "dev", "lo"}
		if strings.Contains(a, ":") {
			argv = append(argv, "nodad")
		}
		out, errOut, err := n.run(nil, argv...)
		switch {
		case err != nil && strings.Contains(a, ":"):
			// No IPv6 here: glibc asks A only, in both runs alike.
			t.Logf("ip addr add %s: %v %s%s (glibc's counts will be A only)", a, err, out, errOut)
		case err != nil:
			t.Fatalf("ip addr add %s: %v %s%s", a, err, out, errOut)
		}
	}
	manifests := t.TempDir()
	for _, f := range []string{"cluster.yaml", "pods.yaml"} {
		b, err := os.ReadFile(filepath.Join(testdata, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(manifests, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withAutopath := filepath.Join(testdata, "Corefile.autopath")
	b, err := os.ReadFile(withAutopath)
	if err != nil {
		t.Fatal(err)
	}
	without := filepath.Join(bin, "Corefile.without")
	if err := os.WriteFile(without, []byte(strings.Replace(string(b), "    autopath @kubernetes\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	n.requests = metricsRequests(n)
	// Every variant: use-vc asks over TCP, single-request-reopen on a new
	// socket per type; autopath must complete them alike.
	clients := clientList(n, gai, variants)

	passes := []struct{ name, corefile, nameserver string }{
		{"without autopath", without, ""},
		{"autopath, client Pod shop/cart-0 (127.0.0.1)", withAutopath, ""},
		{"autopath, no Pod's address (10.1.0.2)", withAutopath, "10.1.0.2"},
		{"autopath, hostNetwork Pod (10.1.0.3)", withAutopath, "10.1.0.3"},
	}
	results := make([][]row, len(passes))
	var stop func()
	for i, p := range passes {
		if i == 0 || p.corefile != passes[i-1].corefile {
			if stop != nil {
				stop()
			}
			n.nameserver = ""
			n.setResolvConf(t, "")
			stop = serveSvcdisc(t, n, svcdisc, filepath.Join(bin, fmt.Sprintf("svcdisc-%d.log", i)), p.corefile, manifests)
		}
		n.nameserver = p.nameserver
		t.Run(p.name, func(t *testing.T) {
			results[i] = runLookups(t, n, clients, outsideResolved(t, n))
		})
	}
	n.nameserver = ""

	before, after := results[0], results[1]
	for _, r := range after {
		if slices.Contains(completedLookups, r.name) && !strings.HasPrefix(r.client, "glibc getent hosts") && r.n > 2 {
			t.Errorf("autopath: %s %s took %d queries, want at most 2 (A and AAAA)\n  %s", r.client, r.name, r.n, strings.Join(r.queries, "\n  "))
		}
	}
	for i := 2; i < len(passes); i++ {
		for _, r := range results[i] {
			if b := find(before, r.client, r.name); b != nil && r.n != b.n {
				t.Errorf("%s: %s %s took %d queries, %d without autopath: a client that is no Pod's must be answered as asked", passes[i].name, r.client, r.name, r.n, b.n)
			}
		}
	}
	t.Logf("real clients with autopath: %v\nqueries per lookup, without autopath → with autopath @kubernetes (client: a Running Pod of shop); every answer right unless marked:\n%s\n%s:\n%s\n%s:\n%s",
		time.Since(start).Round(time.Millisecond), compare(clients, before, after),
		passes[2].name, matrix(clients, results[2]), passes[3].name, matrix(clients, results[3]))
}

func find(rows []row, client, name string) *row {
	for i := range rows {
		if rows[i].client == client && rows[i].name == name {
			return &rows[i]
		}
	}
	return nil
}

// compare is the before/after counts as a Markdown table, a lookup a row
// and a client a column: "8 → 2"; ✗ marks a wrong answer.
func compare(clients []client, before, after []row) string {
	var b strings.Builder
	b.WriteString("| lookup |")
	for _, c := range clients {
		b.WriteString(" " + c.name + " |")
	}
	b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(clients)) + "\n")
	cell := func(r *row) string {
		if r == nil {
			return "–"
		}
		s := strconv.Itoa(r.n)
		switch r.status {
		case "FAIL":
			s += " ✗"
		case "skip":
			s += " skip"
		}
		return s
	}
	for _, l := range lookups {
		name := l.kind + " " + l.name
		fmt.Fprintf(&b, "| `%s` |", name)
		for _, c := range clients {
			x, y := find(before, c.name, name), find(after, c.name, name)
			if x == nil && y == nil {
				b.WriteString(" – |")
				continue
			}
			b.WriteString(" " + cell(x) + " → " + cell(y) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
