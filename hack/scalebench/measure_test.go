package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The checker counts an answer with other addresses than the probe's as
// wrong, and keeps what it was, so that a run can tell a server's error
// from a stray packet.
func TestCheckerKeepsTheWrongAnswersItCounts(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 30 IN A 10.0.0.9")
		r.Answer = append(r.Answer, rr)
		w.WriteMsg(r)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()

	s := &server{Label: "fake", DNS: pc.LocalAddr().String()}
	ch := startChecker([]*server{s}, []probe{{Name: "web.ns.svc.cluster.local.", Want: []netip.Addr{netip.MustParseAddr("10.96.0.1")}}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		ch.mu.Lock()
		n := ch.counts["fake"].Wrong
		ch.mu.Unlock()
		if n > wrongKept || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := ch.Stop()["fake"]
	if got.Wrong <= wrongKept || got.OK != 0 {
		t.Fatalf("counted %+v; want only wrong answers, more than %d", got, wrongKept)
	}
	if len(got.WrongSeen) != wrongKept {
		t.Fatalf("kept %d wrong answers, want the first %d", len(got.WrongSeen), wrongKept)
	}
	if w := got.WrongSeen[0]; !strings.Contains(w, "web.ns.svc.cluster.local.") || !strings.Contains(w, "10.0.0.9") || !strings.Contains(w, "NOERROR") {
		t.Errorf("wrong answer kept as %q: want the name, the rcode and the address given", w)
	}
}
