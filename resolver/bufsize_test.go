package resolver

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestBufSizeCapsUDPRepliesOnBothPaths(t *testing.T) {
	const n = 120
	h := newTestHandler(t, kubeadmOptions(), nil, bigHeadless(n))
	withBufSize(h, 1232)
	addr := startServer(t, h)
	for i := range 3 { // the general path builds the reply, the fast path repeats it
		m := new(dns.Msg)
		m.SetQuestion("hl.big.svc.cluster.local.", dns.TypeA)
		m.SetEdns0(4096, false)
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		q, _ := m.Pack()
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(hangGuard))
		buf := make([]byte, 65535)
		k, err := c.Read(buf)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil {
			t.Fatal(err)
		}
		if k > 1232 || !r.Truncated {
			t.Errorf("query %d: a %d-byte reply (TC %v) for a 4096-byte buffer under bufsize 1232", i, k, r.Truncated)
		}
	}
}

// bufsize's cap replaces the 1232 bytes otherwise kept to: `bufsize 4096`
// lets a client offering 4096 have the whole 2 kB answer, on both paths.
func TestBufSizeAboveTheDefaultLetsLargerRepliesThrough(t *testing.T) {
	const n = 120
	h := newTestHandler(t, kubeadmOptions(), nil, bigHeadless(n))
	withBufSize(h, 4096)
	addr := startServer(t, h)
	for i := range 3 {
		m := new(dns.Msg)
		m.SetQuestion("hl.big.svc.cluster.local.", dns.TypeA)
		m.SetEdns0(4096, false)
		r := exchange(t, "udp", addr, m)
		if size := r.Len(); r.Truncated || len(r.Answer) != n || size <= 1232 {
			t.Errorf("query %d: %d bytes (TC %v) with %d of %d answers, want them all", i, size, r.Truncated, len(r.Answer), n)
		}
	}
}
