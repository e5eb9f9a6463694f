package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
)

// burstUDP sends n queries for web at once from one socket and counts the
// replies that answer and those that are empty with TC set.
func burstUDP(t *testing.T, addr string, n int) (answered, slipped int) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for id := 1; id <= n; id++ {
		m := new(dns.Msg)
		m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
		m.Id = uint16(id)
		b, _ := m.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 4096)
	for range n {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		k, err := c.Read(buf)
		if err != nil {
			break // the rest were dropped
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil {
			t.Fatalf("unparseable reply: %v", err)
		}
		switch {
		case r.Truncated && len(r.Answer) == 0:
			slipped++
		case len(r.Answer) == 1:
			answered++
		}
	}
	return answered, slipped
}

func TestRatelimitDirectiveLimitsUDPCountsAndGoesAwayOnReload(t *testing.T) {
	const limited = `. {
    prometheus 127.0.0.1:0
    kubernetes cluster.local
    ratelimit 1 {
        burst 2
        slip 1
    }
}
`
	r, path := serveCorefile(t, limited)
	addr := r.in.dnsAddr()
	// At 1 per second, 20 queries at once cannot all be answered, however
	// slowly the test runs: every one past the burst slips.
	answered, slipped := burstUDP(t, addr, 20)
	if answered+slipped != 20 || slipped == 0 || answered < 2 {
		t.Fatalf("%d answered and %d slipped of 20, want the burst of 2 or more answered and the rest slipped", answered, slipped)
	}
	if got := firstA(query(t, "tcp", addr, "web.shop.svc.cluster.local.", dns.TypeA)); got != "10.96.10.10" {
		t.Fatalf("TCP from the limited client: A = %q", got)
	}
	resp, err := http.Get("http://" + r.httpAddr(t, "/metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `svcdisc_dns_ratelimited_total{action="slip"} `) ||
		strings.Contains(string(body), `svcdisc_dns_ratelimited_total{action="slip"} 0`) {
		t.Errorf("slips not counted:\n%s", grepLines(string(body), "ratelimited"))
	}

	unlimited := strings.Replace(limited, "    ratelimit 1 {\n        burst 2\n        slip 1\n    }\n", "", 1)
	if err := r.in.reload(context.Background(), path, []byte(unlimited)); err != nil {
		t.Fatal(err)
	}
	if answered, _ := burstUDP(t, addr, 20); answered != 20 {
		t.Fatalf("after a reload without ratelimit %d of 20 answered", answered)
	}
}

func TestRatelimitMustAgreeAcrossBlocksOfOneAddress(t *testing.T) {
	cfg, err := config.Parse("Corefile", strings.NewReader(`cluster.local {
    kubernetes
    ratelimit 100
}
. {
    ratelimit 50
}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = start(context.Background(), cfg, serveFlags{manifests: "../../examples", dnsAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "Corefile:6: ratelimit: the server blocks on 127.0.0.1:0 must have the same ratelimit") {
		t.Fatalf("start = %v, want the second ratelimit refused", err)
	}
}
