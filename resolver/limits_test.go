package resolver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startServerWith serves h with options on a loopback port until the test
// ends.
func startServerWith(t testing.TB, h dns.Handler, o Options) *Server {
	t.Helper()
	s, err := ListenWith("127.0.0.1:0", h, o)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	s.Start(errc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hangGuard bounds every wait on the server in these tests. It is no
// measure of speed: the server's own timeouts are far shorter, and a test
// only fails on it when the server never acts.
const hangGuard = 10 * time.Second

// waitClosed reads from c until the server closes it. It fails the test
// when c is still open after hangGuard.
func waitClosed(t *testing.T, what string, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(hangGuard))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: still open after %s", what, hangGuard)
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s: %v, want the server to close", what, err)
		}
		return
	}
}

// queryTCP sends one query over c and reads its reply.
func queryTCP(c net.Conn, name string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	dc := &dns.Conn{Conn: c}
	c.SetDeadline(time.Now().Add(hangGuard))
	if err := dc.WriteMsg(m); err != nil {
		return nil, err
	}
	return dc.ReadMsg()
}

// eventuallyAnsweredOverTCP asks over fresh connections until one is
// answered: slots free up as the server notices closed connections.
func eventuallyAnsweredOverTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			r, qerr := queryTCP(c, "web.shop.svc.cluster.local.")
			c.Close()
			if qerr == nil && len(r.Answer) == 1 {
				return
			}
			err = qerr
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TCP answer within %s: %v", hangGuard, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTCPConnectionsOverTheCapAreClosedAndThoseUnderKeepWorking(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml"))
	// Timeouts far longer than the test: only the cap closes anything.
	s := startServerWith(t, h, Options{MaxTCPConns: 3, TCPReadTimeout: time.Minute, TCPIdleTimeout: time.Minute})
	var held []net.Conn
	for range 3 {
		held = append(held, dialTCP(t, s.Addr()))
	}
	// The server accepts in the order the connections were made.
	for i := range 2 {
		waitClosed(t, fmt.Sprintf("connection %d over the cap", i+1), dialTCP(t, s.Addr()))
	}
	for i, c := range held {
		if r, err := queryTCP(c, "web.shop.svc.cluster.local."); err != nil || len(r.Answer) != 1 {
			t.Fatalf("held connection %d: %v %v", i+1, r, err)
		}
	}
	// Closing one frees its slot for a new client.
	held[0].Close()
	eventuallyAnsweredOverTCP(t, s.Addr())
	if r, err := queryTCP(held[1], "web.shop.svc.cluster.local."); err != nil || len(r.Answer) != 1 {
		t.Fatalf("a held connection after the churn: %v %v", r, err)
	}
}

func TestSlowTCPClientsAreDisconnectedAndCannotHoldTheServer(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml"))
	const timeout = 200 * time.Millisecond
	s := startServerWith(t, h, Options{MaxTCPConns: 5, TCPReadTimeout: timeout, TCPIdleTimeout: timeout})
	addr := s.Addr()

	silent := dialTCP(t, addr)
	halfPrefix := dialTCP(t, addr)
	halfPrefix.Write([]byte{0})
	prefixOnly := dialTCP(t, addr)
	prefixOnly.Write([]byte{0, 40})
	trickle := dialTCP(t, addr)
	trickle.Write([]byte{0, 40})
	go func() {
		// A byte every 30 ms: 40 of them take six times the timeout.
		for range 40 {
			time.Sleep(30 * time.Millisecond)
			if _, err := trickle.Write([]byte{0}); err != nil {
				return
			}
		}
	}()
	answeredThenIdle := dialTCP(t, addr)
	if r, err := queryTCP(answeredThenIdle, "web.shop.svc.cluster.local."); err != nil || len(r.Answer) != 1 {
		t.Fatalf("first query: %v %v", r, err)
	}
	var extra []net.Conn // over the cap, or let in once a slot frees: closed either way
	for range 3 {
		extra = append(extra, dialTCP(t, addr))
	}

	for _, tc := range []struct {
		what string
		c    net.Conn
	}{
		{"a client that sends nothing", silent},
		{"a client that sends half the length prefix", halfPrefix},
		{"a client that sends the length prefix only", prefixOnly},
		{"a client that trickles its query", trickle},
		{"a client idle after its answer", answeredThenIdle},
		{"a client over the cap", extra[0]},
		{"another client over the cap", extra[1]},
		{"a third client over the cap", extra[2]},
	} {
		waitClosed(t, tc.what, tc.c)
	}
	eventuallyAnsweredOverTCP(t, addr)
}

func TestANYIsAnsweredWithOneRRset(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, loadObjects(t, "testdata/cluster.yaml"))
	runCases(t, h, []dnsCase{
		{name: "a service name answers its A set, not its SRV set too", qname: "web.shop.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "a dual-stack service answers its A set only", qname: "dual.shop.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"dual.shop.svc.cluster.local. 30 IN A 10.96.1.2"}},
		{name: "an IPv6-only name answers its AAAA set", qname: "fd00-244--3-1.peers.shop.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"fd00-244--3-1.peers.shop.svc.cluster.local. 30 IN AAAA fd00:244::3:1"}},
		{name: "an SRV name answers its SRV set with the targets' addresses", qname: "_http._tcp.web.shop.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"_http._tcp.web.shop.svc.cluster.local. 30 IN SRV 0 100 80 web.shop.svc.cluster.local."},
			extra:  []string{"web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "the apex answers its NS set, not the SOA too", qname: "cluster.local.", qtype: dns.TypeANY,
			answer: []string{"cluster.local. 30 IN NS ns.dns.cluster.local."},
			extra:  []string{"ns.dns.cluster.local. 30 IN A 10.96.0.10"}},
		{name: "an empty non-terminal is NODATA", qname: "shop.svc.cluster.local.", qtype: dns.TypeANY, ns: []string{soaLocal}},
		{name: "svc is an empty non-terminal too", qname: "svc.cluster.local.", qtype: dns.TypeANY, ns: []string{soaLocal}},
		{name: "a name that does not exist is NXDOMAIN", qname: "nope.shop.svc.cluster.local.", qtype: dns.TypeANY,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "an ExternalName answers its CNAME", qname: "ext.shop.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"ext.shop.svc.cluster.local. 30 IN CNAME www.example.com."}},
		{name: "an in-zone CNAME is followed to one set", qname: "alias.shop.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local.", "web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "a PTR name answers its PTR", qname: "1.1.96.10.in-addr.arpa.", qtype: dns.TypeANY,
			answer: []string{"1.1.96.10.in-addr.arpa. 30 IN PTR web.shop.svc.cluster.local."}},
	})
}

func TestZoneTransfersAreAlwaysRefused(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, loadObjects(t, "testdata/cluster.yaml"))
	runCases(t, h, []dnsCase{
		{name: "AXFR of the cluster zone", qname: "cluster.local.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
		{name: "IXFR of the cluster zone", qname: "cluster.local.", qtype: dns.TypeIXFR, rcode: dns.RcodeRefused},
		{name: "AXFR of a namespace", qname: "shop.svc.cluster.local.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
		{name: "AXFR of a reverse zone", qname: "in-addr.arpa.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
		{name: "AXFR in any letter case", qname: "Cluster.LOCAL.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
	})
	// Transfers come over TCP: the server refuses there too, with no record.
	addr := startServer(t, h)
	for _, qt := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
		m := new(dns.Msg)
		m.SetQuestion("cluster.local.", qt)
		if r := exchange(t, "tcp", addr, m); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Errorf("%s over TCP: %v", dns.TypeToString[qt], r)
		}
	}
}

// bigUpstream answers every query with n A records: too many for UDP.
type bigUpstream struct{ n int }

func (u bigUpstream) Exchange(_ context.Context, req *dns.Msg) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	for i := range u.n {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.IPv4(192, 0, 2, byte(i))})
	}
	return m, nil
}

func TestNoUDPAnswerExceedsTheClientsBuffer(t *testing.T) {
	const n = 120 // 16 bytes each compressed: some 2 kB
	h := newTestHandler(t, kubeadmOptions(), nil, bigHeadless(n))
	withForward(h, bigUpstream{n})
	addr := startServer(t, h)
	tests := []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"ANY at a big headless service", "hl.big.svc.cluster.local.", dns.TypeANY},
		{"A of a big headless service", "hl.big.svc.cluster.local.", dns.TypeA},
		{"a big forwarded answer", "many.example.com.", dns.TypeA},
		{"a big forwarded answer to ANY", "many.example.com.", dns.TypeANY},
	}
	for _, tt := range tests {
		for _, bufsize := range []uint16{0, 512, 1232, 1400, 4096} {
			// Three times: the general path builds a cluster name's reply,
			// the fast path repeats it.
			for i := range 3 {
				t.Run(fmt.Sprintf("%s, EDNS buffer %d, query %d", tt.name, bufsize, i), func(t *testing.T) {
					m := new(dns.Msg)
					m.SetQuestion(tt.qname, tt.qtype)
					limit := dns.MinMsgSize
					if bufsize > 0 {
						m.SetEdns0(bufsize, false)
						// Never more than the 1232 bytes we advertise, which
						// are not fragmented, whatever the client offers.
						limit = min(int(bufsize), 1232)
					}
					c, err := net.Dial("udp", addr)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					q, _ := m.Pack()
					if _, err := c.Write(q); err != nil {
						t.Fatal(err)
					}
					c.SetReadDeadline(time.Now().Add(hangGuard))
					buf := make([]byte, 65535)
					k, err := c.Read(buf)
					if err != nil {
						t.Fatal(err)
					}
					r := new(dns.Msg)
					if err := r.Unpack(buf[:k]); err != nil {
						t.Fatal(err)
					}
					if k > limit {
						t.Errorf("a %d-byte reply for a %d-byte buffer", k, limit)
					}
					if !r.Truncated || len(r.Answer) >= n {
						t.Errorf("truncated=%v with %d of %d answers", r.Truncated, len(r.Answer), n)
					}
				})
			}
		}
		t.Run(tt.name+", over TCP in full", func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tt.qname, tt.qtype)
			if r := exchange(t, "tcp", addr, m); r.Truncated || len(r.Answer) != n {
				t.Errorf("truncated=%v with %d of %d answers", r.Truncated, len(r.Answer), n)
			}
		})
	}
}

func TestRateLimitedUDPQueriesAreDroppedOrSlippedAndTCPIsNot(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml"))
	var drops, slips atomic.Int32
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)} // stopped: no refill during the test
	rl, err := NewRateLimiter(RateLimit{Rate: 1, Burst: 2, Slip: 2, Now: clock.now, OnLimit: func(slip bool) {
		if slip {
			slips.Add(1)
		} else {
			drops.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, WithRateLimit(h, rl), Options{})

	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// ask sends queries 1..n, on the fast path (lower case) and the
	// general path (upper case) in turn, and sorts the replies by ID.
	ask := func(n int) (answered, truncated, silent int) {
		for id := 1; id <= n; id++ {
			m := new(dns.Msg)
			m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
			if id%2 == 0 {
				m.Question[0].Name = "WEB.shop.svc.cluster.local."
			}
			m.Id = uint16(id)
			b, _ := m.Pack()
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		got := make(map[uint16]*dns.Msg)
		buf := make([]byte, 4096)
		// Replies come at once; the quiet period tells that the rest
		// were dropped.
		for len(got) < n {
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			k, err := c.Read(buf)
			if err != nil {
				break
			}
			r := new(dns.Msg)
			if err := r.Unpack(buf[:k]); err != nil {
				t.Fatalf("unparseable reply: %v", err)
			}
			got[r.Id] = r
		}
		for _, r := range got {
			switch {
			case r.Truncated && len(r.Answer) == 0:
				truncated++
			case !r.Truncated && len(r.Answer) == 1:
				answered++
			default:
				t.Errorf("unexpected reply:\n%v", r)
			}
		}
		return answered, truncated, n - len(got)
	}

	answered, truncated, silent := ask(10)
	if answered != 2 || truncated != 4 || silent != 4 {
		t.Errorf("rate 1, burst 2, slip 2, 10 queries at once: %d answered, %d TC, %d dropped; want 2, 4, 4",
			answered, truncated, silent)
	}
	if drops.Load() != 4 || slips.Load() != 4 {
		t.Errorf("counted %d drops and %d slips, want 4 and 4", drops.Load(), slips.Load())
	}

	m := new(dns.Msg)
	m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
	if r := exchange(t, "tcp", s.Addr(), m); len(r.Answer) != 1 {
		t.Errorf("TCP from the limited client: %v", r)
	}

	s.SetHandler(h) // as a reload to a configuration without ratelimit does
	if answered, _, _ := ask(3); answered != 3 {
		t.Errorf("without the limiter %d of 3 answered", answered)
	}
}

// TestUDPReceiveBufferIsRaised checks the UDP socket asks for UDPReadBuffer:
// the kernel's default drops queries whenever the readers lose the CPU for
// a moment. The kernel grants at most net.core.rmem_max (and reports
// twice what it grants).
func TestUDPReceiveBufferIsRaised(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatalf("rmem_max: %v", err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen("127.0.0.1:0", dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.tcp.ln.Close()
	defer srv.udp.conn.Close()
	raw, err := srv.udp.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := raw.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if want := 2 * min(rmemMax, UDPReadBuffer); got < want {
		t.Errorf("SO_RCVBUF = %d, want at least %d (rmem_max %d)", got, want, rmemMax)
	}
}
