package resolver

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	pforward "github.com/svcdisc/svcdisc/plugin/forward"
	"github.com/svcdisc/svcdisc/plugin/kubernetes"
)

// heldUpstream answers like fakeUpstream, but each query waits for a
// token on release (or release closed) first; it counts the queries that
// reached it.
type heldUpstream struct {
	calls   atomic.Int32
	release chan struct{}
}

func newHeldUpstream() *heldUpstream { return &heldUpstream{release: make(chan struct{})} }

func (u *heldUpstream) Exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	u.calls.Add(1)
	select {
	case <-u.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return (&fakeUpstream{}).Exchange(ctx, req)
}

// waitCalls waits until n queries reached u; it fails the test after
// hangGuard.
func (u *heldUpstream) waitCalls(t *testing.T, n int32) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for u.calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d queries reached the upstream within %s, want %d", u.calls.Load(), hangGuard, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// heldForwarding is the cluster of testdata/cluster.yaml forwarding the
// rest to up, with a forward timeout longer than any test.
func heldForwarding(t *testing.T, up pforward.Upstream) *Handler {
	t.Helper()
	h := newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml"))
	withForward(h, up)
	h.blocks[0].block.Chain.(*kubernetes.Handler).Next.(*pforward.Handler).Timeout = 2 * hangGuard
	return h
}

// pipeline writes the queries (name, ID) back to back in one write, each
// with its length prefix, as a pipelining client does.
func pipeline(t *testing.T, c net.Conn, qs ...pq) {
	t.Helper()
	var b []byte
	for _, q := range qs {
		m := new(dns.Msg)
		m.SetQuestion(q.name, dns.TypeA)
		m.Id = q.id
		p, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	c.SetWriteDeadline(time.Now().Add(hangGuard))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

type pq struct {
	name string
	id   uint16
}

// readReply reads the next reply on c.
func readReply(t *testing.T, c net.Conn) *dns.Msg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(hangGuard))
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		t.Fatalf("reading a reply: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading a reply: %v", err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unparseable reply: %v", err)
	}
	return m
}

func TestPipelinedTCPQueriesAreAnsweredAsTheyComplete(t *testing.T) {
	up := newHeldUpstream()
	s := startServerWith(t, heldForwarding(t, up), Options{})
	c := dialTCP(t, s.Addr())
	pipeline(t, c,
		pq{"www.example.com.", 1},            // forwarded, held upstream
		pq{"web.shop.svc.cluster.local.", 2}, // a cluster name behind it
		pq{"nope.shop.svc.cluster.local.", 3},
	)
	up.waitCalls(t, 1)
	// The forwarded query is still held: whatever comes first is not its
	// answer.
	got := map[uint16]*dns.Msg{}
	for range 2 {
		r := readReply(t, c)
		got[r.Id] = r
	}
	if r := got[2]; r == nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.96.1.1" {
		t.Errorf("the cluster name behind a held forwarded one: %v", r)
	}
	if r := got[3]; r == nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("the NXDOMAIN behind a held forwarded one: %v", r)
	}
	close(up.release)
	if r := readReply(t, c); r.Id != 1 || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("the forwarded answer, once released: %v", r)
	}
}

func TestAtMost128PipelinedQueriesAreInFlightPerConnection(t *testing.T) {
	up := newHeldUpstream()
	s := startServerWith(t, heldForwarding(t, up), Options{})
	c := dialTCP(t, s.Addr())
	const n = maxTCPInFlight + 3
	var qs []pq
	for i := range n {
		qs = append(qs, pq{fmt.Sprintf("q%d.example.com.", i), uint16(1000 + i)})
	}
	pipeline(t, c, qs...)
	up.waitCalls(t, maxTCPInFlight)
	// The rest wait in the socket: no timer tells they never will be
	// read, so give the server ample time to (wrongly) read them.
	time.Sleep(200 * time.Millisecond)
	if got := up.calls.Load(); got != maxTCPInFlight {
		t.Fatalf("%d queries in flight on one connection, want %d", got, maxTCPInFlight)
	}
	// One answered frees one place.
	up.release <- struct{}{}
	first := readReply(t, c)
	up.waitCalls(t, maxTCPInFlight+1)
	time.Sleep(100 * time.Millisecond)
	if got := up.calls.Load(); got != maxTCPInFlight+1 {
		t.Fatalf("%d queries reached the upstream after one answer, want %d", got, maxTCPInFlight+1)
	}
	close(up.release)
	got := map[uint16]bool{first.Id: true}
	for range n - 1 {
		r := readReply(t, c)
		if got[r.Id] {
			t.Fatalf("ID %d answered twice", r.Id)
		}
		got[r.Id] = true
		want := fmt.Sprintf("q%d.example.com.", r.Id-1000)
		if len(r.Question) != 1 || r.Question[0].Name != want || len(r.Answer) != 1 {
			t.Fatalf("reply with ID %d is not the answer to %s: %v", r.Id, want, r)
		}
	}
	if len(got) != n {
		t.Fatalf("%d of %d queries answered", len(got), n)
	}
}

func TestATCPConnectionWithAnAnswerInFlightIsNotIdle(t *testing.T) {
	up := newHeldUpstream()
	const timeout = 200 * time.Millisecond
	s := startServerWith(t, heldForwarding(t, up), Options{TCPReadTimeout: timeout, TCPIdleTimeout: timeout})
	c := dialTCP(t, s.Addr())
	pipeline(t, c, pq{"www.example.com.", 1})
	up.waitCalls(t, 1)
	time.Sleep(3 * timeout) // the client waits on us, not the other way
	close(up.release)
	if r := readReply(t, c); r.Id != 1 || len(r.Answer) != 1 {
		t.Fatalf("the answer after three idle timeouts: %v", r)
	}
	// Nothing in flight and nothing asked: now it is idle.
	waitClosed(t, "a connection idle after its last answer", c)
}

func TestShutdownWaitsForTCPAnswersInFlight(t *testing.T) {
	up := newHeldUpstream()
	s, err := ListenWith("127.0.0.1:0", heldForwarding(t, up), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(make(chan error, 2))
	c := dialTCP(t, s.Addr())
	pipeline(t, c, pq{"www.example.com.", 1}, pq{"www.example.org.", 2})
	up.waitCalls(t, 2)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		t.Fatalf("shutdown returned with answers in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(up.release)
	got := map[uint16]bool{}
	for range 2 {
		r := readReply(t, c)
		got[r.Id] = len(r.Answer) == 1
	}
	if !got[1] || !got[2] {
		t.Errorf("answers in flight at shutdown: %v", got)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	waitClosed(t, "a connection after shutdown", c)
}

func TestAClientThatHalfClosesAfterItsQueriesGetsEveryAnswer(t *testing.T) {
	up := newHeldUpstream()
	s := startServerWith(t, heldForwarding(t, up), Options{})
	c := dialTCP(t, s.Addr())
	pipeline(t, c, pq{"www.example.com.", 1}, pq{"web.shop.svc.cluster.local.", 2})
	up.waitCalls(t, 1)
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, c); r.Id != 2 || len(r.Answer) != 1 {
		t.Fatalf("first answer after the half-close: %v", r)
	}
	close(up.release)
	if r := readReply(t, c); r.Id != 1 || len(r.Answer) != 1 {
		t.Fatalf("the held answer after the half-close: %v", r)
	}
	waitClosed(t, "a half-closed connection with nothing in flight", c)
}
