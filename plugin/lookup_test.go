package plugin

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"
)

func TestChaseStopsAtMaxLookups(t *testing.T) {
	var l Lookup
	if l.Chase(context.Background(), nil, "a.", dns.TypeA) != nil {
		t.Fatal("a nil Lookup answered")
	}
	depth := 0
	l = func(ctx context.Context, st *State, name string, qtype uint16) *dns.Msg {
		depth++
		if m := l.Chase(ctx, st, name, qtype); m != nil {
			return m
		}
		return new(dns.Msg)
	}
	if l.Chase(context.Background(), nil, "a.", dns.TypeA) == nil || depth != MaxLookups {
		t.Errorf("%d lookups within one another, want %d", depth, MaxLookups)
	}
}

func TestLookupStateIsLikeTheQuery(t *testing.T) {
	r := new(dns.Msg)
	r.SetQuestion("Outside.Shop.svc.cluster.local.", dns.TypeAAAA)
	r.RecursionDesired, r.CheckingDisabled = false, true
	r.SetEdns0(4096, true)
	r.IsEdns0().Option = append(r.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	remote := &net.TCPAddr{IP: net.IPv4(10, 244, 0, 5), Port: 4000}
	st := NewState(r, ".", remote, "tcp")

	got := LookupState(st, "db.example.com", dns.TypeAAAA, ".")
	q := got.Req
	if got.Name != "db.example.com." || got.Type != dns.TypeAAAA || got.Class != dns.ClassINET || got.Zone != "." {
		t.Errorf("question %s %d %d in zone %s", got.Name, got.Type, got.Class, got.Zone)
	}
	if q.RecursionDesired || !q.CheckingDisabled {
		t.Errorf("RD %v CD %v, want the query's", q.RecursionDesired, q.CheckingDisabled)
	}
	o := q.IsEdns0()
	if o == nil || o.UDPSize() != 4096 || !o.Do() || len(o.Option) != 0 {
		t.Errorf("OPT %v, want the query's buffer and DO bit, no options", o)
	}
	if got.Remote != remote || got.Proto != "tcp" {
		t.Errorf("from %v over %s, want the client's", got.Remote, got.Proto)
	}
	if r.Question[0].Name != "Outside.Shop.svc.cluster.local." {
		t.Error("the client's query was changed")
	}

	plain := LookupState(nil, "db.example.com.", dns.TypeA, ".")
	if plain.Req.IsEdns0() != nil || !plain.Req.RecursionDesired || plain.Proto != "udp" || plain.Remote != nil {
		t.Errorf("a lookup without a query: %v over %s from %v", plain.Req, plain.Proto, plain.Remote)
	}
}
