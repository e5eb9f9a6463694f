package resolver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/zones"
)

// startServer serves h on a loopback port over UDP and TCP and returns the
// address; the server stops when the test ends.
func startServer(t testing.TB, h dns.Handler) string {
	t.Helper()
	return startServerWith(t, h, Options{}).Addr()
}

// bigHeadless is a headless Service with n ready endpoints: too large for a
// UDP answer.
func bigHeadless(n int) []zones.Object {
	svc := &zones.Service{Namespace: "big", Name: "hl", Type: zones.Headless}
	sl := &zones.EndpointSlice{Namespace: "big", Name: "hl-1", Service: "hl",
		Ports: []zones.Port{{Name: "http", Protocol: "tcp", Port: 80}}}
	eps := make([]zones.Endpoint, 0, n)
	for i := range n {
		eps = append(eps, zones.Endpoint{
			Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 1, byte(i / 256), byte(i % 256)})},
			Name:      fmt.Sprintf("pod-%d", i),
			Ready:     true,
		})
	}
	return []zones.Object{svc, sl.WithEndpoints(eps...)}
}

func exchange(t *testing.T, net, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 2 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s exchange: %v", net, err)
	}
	if r.Id != m.Id {
		t.Fatalf("reply id %d, want %d", r.Id, m.Id)
	}
	return r
}

func TestServerAnswersOverUDPAndTCP(t *testing.T) {
	addr := startServer(t, newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml")))
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
			r := exchange(t, proto, addr, m)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.96.1.1" || !r.Authoritative {
				t.Fatalf("unexpected reply:\n%v", r)
			}
		})
	}
}

func TestLargeAnswerTruncatesOverUDPAndIsCompleteOverTCP(t *testing.T) {
	const n = 100
	addr := startServer(t, newTestHandler(t, kubeadmOptions(), nil, bigHeadless(n)))
	q := func(bufsize uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("_http._tcp.hl.big.svc.cluster.local.", dns.TypeSRV)
		if bufsize > 0 {
			m.SetEdns0(bufsize, false)
		}
		return m
	}

	wireLen := func(m *dns.Msg) int { m.Compress = true; return m.Len() }
	r := exchange(t, "udp", addr, q(0))
	if !r.Truncated {
		t.Errorf("no EDNS: %d answers, TC not set", len(r.Answer))
	}
	if l := wireLen(r); l > dns.MinMsgSize {
		t.Errorf("no EDNS: reply of %d bytes exceeds 512", l)
	}

	r = exchange(t, "udp", addr, q(1232))
	if !r.Truncated {
		t.Errorf("EDNS 1232: %d answers, TC not set", len(r.Answer))
	}
	if l := wireLen(r); l > 1232 {
		t.Errorf("EDNS 1232: reply of %d bytes exceeds the client's buffer", l)
	}
	if r.IsEdns0() == nil {
		t.Error("EDNS query answered without OPT")
	}

	r = exchange(t, "tcp", addr, q(1232))
	if r.Truncated || len(r.Answer) != n || len(r.Extra) != n+1 {
		t.Errorf("TCP: truncated=%v answers=%d extra=%d, want complete %d answers and %d additionals + OPT",
			r.Truncated, len(r.Answer), len(r.Extra), n, n)
	}
}

func TestAdditionalRecordsAreDroppedBeforeTruncating(t *testing.T) {
	addr := startServer(t, newTestHandler(t, kubeadmOptions(), nil, bigHeadless(8)))
	m := new(dns.Msg)
	m.SetQuestion("_http._tcp.hl.big.svc.cluster.local.", dns.TypeSRV)
	r := exchange(t, "udp", addr, m)
	// 8 SRV records (targets are never compressed) fit 512 bytes; with their
	// 8 additional A records they do not.
	if r.Truncated || len(r.Answer) != 8 {
		t.Fatalf("truncated=%v answers=%d, want all 8 answers without TC", r.Truncated, len(r.Answer))
	}
}

func TestEDNSVersionOtherThanZeroIsBadVers(t *testing.T) {
	addr := startServer(t, newTestHandler(t, kubeadmOptions(), nil, nil))
	m := new(dns.Msg)
	m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	r := exchange(t, "udp", addr, m)
	if r.Rcode != dns.RcodeBadVers {
		t.Fatalf("rcode %s, want BADVERS", dns.RcodeToString[r.Rcode])
	}
}

func TestMalformedQueries(t *testing.T) {
	addr := startServer(t, newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml")))
	valid := new(dns.Msg)
	valid.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
	wire, _ := valid.Pack()

	cases := []struct {
		name  string
		pkt   []byte
		rcode int // -1: no reply expected
	}{
		{"a short header gets no reply", []byte{0x12, 0x34, 0x01}, -1},
		{"a truncated question is FORMERR", wire[:len(wire)-3], dns.RcodeFormatError},
		{"two questions are FORMERR", func() []byte { b := append([]byte(nil), wire...); b[5] = 2; return b }(), dns.RcodeFormatError},
		{"a response is ignored", func() []byte { b := append([]byte(nil), wire...); b[2] |= 0x80; return b }(), -1},
		{"an UPDATE is NOTIMP", func() []byte { b := append([]byte(nil), wire...); b[2] = b[2]&0x87 | 5<<3; return b }(), dns.RcodeNotImplemented},
		{"a compression loop is FORMERR", append(append([]byte(nil), wire[:12]...), 0xc0, 12, 0, 1, 0, 1), dns.RcodeFormatError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tc.pkt); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			buf := make([]byte, 4096)
			n, err := conn.Read(buf)
			if tc.rcode < 0 {
				if err == nil {
					t.Fatalf("got a %d-byte reply, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("no reply: %v", err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(buf[:n]); err != nil {
				t.Fatalf("unparseable reply: %v", err)
			}
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
	// The server still answers afterwards.
	if r := exchange(t, "udp", addr, valid); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after malformed input: rcode %s", dns.RcodeToString[r.Rcode])
	}
}

// TestWildcardListenerRepliesFromTheAddressAsked binds the unspecified
// address and asks over each loopback address: a connected client accepts
// only a reply from the address it sent to, so a reply from another source
// would time out. Both the fast path (repeats of a plain query) and the
// general path (a forwarded-style query) are exercised.
func TestWildcardListenerRepliesFromTheAddressAsked(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml"))
	for _, tc := range []struct{ bind, ask string }{
		{"0.0.0.0:0", "127.0.0.1"},
		{"0.0.0.0:0", "127.0.0.2"},
		{"[::]:0", "::1"},
		{"[::]:0", "127.0.0.1"},
	} {
		t.Run(tc.bind+" asked on "+tc.ask, func(t *testing.T) {
			s, err := Listen(tc.bind, h)
			if err != nil {
				t.Skipf("cannot bind %s here: %v", tc.bind, err)
			}
			errc := make(chan error, 2)
			s.Start(errc)
			defer s.Shutdown(context.Background())
			_, port, _ := net.SplitHostPort(s.Addr())
			addr := net.JoinHostPort(tc.ask, port)
			if c, err := net.Dial("udp", addr); err != nil {
				t.Skipf("no %s here: %v", tc.ask, err)
			} else {
				c.Close()
			}
			for i := range 3 {
				m := new(dns.Msg)
				m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
				if i == 2 {
					m.Question[0].Name = "Web.shop.svc.cluster.local." // the general path
				}
				if r := exchange(t, "udp", addr, m); len(r.Answer) != 1 {
					t.Fatalf("reply %v", r)
				}
			}
		})
	}
}
