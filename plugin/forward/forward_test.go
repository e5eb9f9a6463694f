package forward

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/forward"
	"github.com/svcdisc/svcdisc/plugin"
)

// fakeUpstream answers every query with rcode (and an A record for
// NOERROR unless empty), or fails with err; it records what it was asked.
type fakeUpstream struct {
	rcode int
	empty bool
	err   error
	asked int
	tcp   bool // the last query's context was marked as a TCP client's
}

func (u *fakeUpstream) Exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	u.asked++
	u.tcp = forward.ClientTCP(ctx)
	if u.err != nil {
		return nil, u.err
	}
	m := new(dns.Msg)
	m.SetRcode(req, u.rcode)
	m.RecursionAvailable = true
	if u.rcode == dns.RcodeSuccess && !u.empty {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
			A: net.IPv4(192, 0, 2, byte(u.rcode+1))}}
	}
	return m, nil
}

// refused is what the end of a chain answers.
type refused struct{ asked int }

func (r *refused) Name() string { return "end" }
func (r *refused) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	r.asked++
	return st.Error("end", dns.RcodeRefused)
}

func serve(t *testing.T, h plugin.Handler, name, proto string) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, dns.TypeA)
	return h.ServeDNS(context.Background(), plugin.NewState(req, ".", nil, proto))
}

func TestNextHandsOnToTheNextForward(t *testing.T) {
	tests := []struct {
		name        string
		first       fakeUpstream
		next        []int
		nodata      bool
		wantRcode   int
		wantSecond  int // queries the second forward's upstream saw
		wantSection int // answers
	}{
		{"NXDOMAIN in next asks the next forward", fakeUpstream{rcode: dns.RcodeNameError}, []int{dns.RcodeNameError}, false, dns.RcodeSuccess, 1, 1},
		{"an rcode not in next is the answer", fakeUpstream{rcode: dns.RcodeServerFailure}, []int{dns.RcodeNameError}, false, dns.RcodeServerFailure, 0, 0},
		{"NOERROR with answers is the answer", fakeUpstream{rcode: dns.RcodeSuccess}, []int{dns.RcodeNameError}, true, dns.RcodeSuccess, 0, 1},
		{"an empty NOERROR with next_on_nodata asks the next forward", fakeUpstream{rcode: dns.RcodeSuccess, empty: true}, nil, true, dns.RcodeSuccess, 1, 1},
		{"an empty NOERROR without next_on_nodata is the answer", fakeUpstream{rcode: dns.RcodeSuccess, empty: true}, []int{dns.RcodeNameError}, false, dns.RcodeSuccess, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := &refused{}
			second := &fakeUpstream{rcode: dns.RcodeSuccess}
			first := tt.first
			h := &Handler{From: ".", Upstream: &first, Timeout: time.Second, NextRcodes: tt.next, NextOnNodata: tt.nodata,
				Next: &Handler{From: ".", Upstream: second, Timeout: time.Second, Next: end}}
			m := serve(t, h, "x.example.", "udp")
			if m.Rcode != tt.wantRcode || len(m.Answer) != tt.wantSection || second.asked != tt.wantSecond {
				t.Errorf("rcode %s, %d answers, second asked %d times; want %s, %d, %d",
					dns.RcodeToString[m.Rcode], len(m.Answer), second.asked,
					dns.RcodeToString[tt.wantRcode], tt.wantSection, tt.wantSecond)
			}
			if !m.Response || !m.RecursionAvailable {
				t.Errorf("not the upstream's response: %v", m)
			}
			if end.asked != 0 {
				t.Error("the query went past the forwards")
			}
		})
	}
}

func TestNextIsIgnoredWhenTheNextHandlerIsNotAForward(t *testing.T) {
	end := &refused{}
	h := &Handler{From: ".", Upstream: &fakeUpstream{rcode: dns.RcodeNameError}, Timeout: time.Second,
		NextRcodes: []int{dns.RcodeNameError}, NextOnNodata: true, Next: end}
	m := serve(t, h, "x.example.", "udp")
	if m.Rcode != dns.RcodeNameError || end.asked != 0 {
		t.Errorf("rcode %s, next asked %d times; want the upstream's NXDOMAIN", dns.RcodeToString[m.Rcode], end.asked)
	}
}

func TestNextForwardOfAnotherZonePassesOn(t *testing.T) {
	end := &refused{}
	other := &fakeUpstream{rcode: dns.RcodeSuccess}
	h := &Handler{From: ".", Upstream: &fakeUpstream{rcode: dns.RcodeNameError}, Timeout: time.Second,
		NextRcodes: []int{dns.RcodeNameError},
		Next:       &Handler{From: "other.org.", Upstream: other, Timeout: time.Second, Next: end}}
	m := serve(t, h, "x.example.", "udp")
	if m.Rcode != dns.RcodeRefused || other.asked != 0 || end.asked != 1 {
		t.Errorf("rcode %s, other forward asked %d, end %d", dns.RcodeToString[m.Rcode], other.asked, end.asked)
	}
}

func TestUpstreamErrors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{forward.ErrLimit, dns.RcodeRefused},
		{errors.New("no reply"), dns.RcodeServerFailure},
	} {
		h := &Handler{From: ".", Upstream: &fakeUpstream{err: tt.err}, Timeout: time.Second}
		if m := serve(t, h, "x.example.", "udp"); m.Rcode != tt.want {
			t.Errorf("%v: rcode %s, want %s", tt.err, dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.want])
		}
	}
}

func TestTCPClientsQueriesAreMarked(t *testing.T) {
	for _, proto := range []string{"udp", "tcp"} {
		up := &fakeUpstream{rcode: dns.RcodeSuccess}
		h := &Handler{From: ".", Upstream: up, Timeout: time.Second}
		serve(t, h, "x.example.", proto)
		if up.tcp != (proto == "tcp") {
			t.Errorf("a %s client's query marked TCP: %v", proto, up.tcp)
		}
	}
}
