package resolver

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin/kubernetes"
	"github.com/svcdisc/svcdisc/zones"
)

// rawExchange sends the packet b to addr over network and returns the
// reply, nil when none came within a second.
func rawExchange(t *testing.T, network, addr string, b []byte) *dns.Msg {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if network == "tcp" {
		b = append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	var reply []byte
	if network == "tcp" {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return nil
		}
		reply = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatal(err)
		}
	} else {
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			return nil
		}
		reply = buf[:n]
	}
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		t.Fatalf("unparseable reply: %v", err)
	}
	return m
}

func packed(t *testing.T, f func(m *dns.Msg)) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
	m.Id = 0x1234
	f(m)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rcodeRecorder is an Observer that keeps the rcode of every reply, with
// BADVERS's upper bits.
type rcodeRecorder struct {
	mu     sync.Mutex
	rcodes []int
}

func (r *rcodeRecorder) observe(_ dns.ResponseWriter, _, m *dns.Msg, _ *Block, _ string, _ int, _ time.Duration) {
	r.mu.Lock()
	r.rcodes = append(r.rcodes, m.Rcode)
	r.mu.Unlock()
}

func (r *rcodeRecorder) last() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rcodes) == 0 {
		return -1, 0
	}
	return r.rcodes[len(r.rcodes)-1], len(r.rcodes)
}

// Error replies keep EDNS (RFC 6891 7: a responder includes an OPT when the
// query had one), a query with two OPTs is FORMERR (6.1.1), and every
// error reply, malformed headers and bodies included, reaches the
// Observer: over UDP and TCP alike.
func TestErrorRepliesCarryAnOPTAndAreObserved(t *testing.T) {
	z := zones.New(kubeadmOptions())
	z.Replace(loadObjects(t, "testdata/cluster.yaml"))
	z.MarkSynced()
	h := NewHandler([]*Block{{Zones: []string{"cluster.local."}, Chain: kubernetes.New(z, nil, nil), Zone: z}}, nil)
	rec := &rcodeRecorder{}
	h.SetObserver(rec.observe)
	addr := startServer(t, h)
	opt := func(m *dns.Msg) { m.SetEdns0(1232, true) }
	garbage := append(packed(t, func(*dns.Msg) {})[:12], 0xff, 0xff, 0xff)
	tests := []struct {
		name  string
		req   []byte
		rcode int
		opt   bool
	}{
		{"two OPT records", packed(t, func(m *dns.Msg) { opt(m); opt(m) }), dns.RcodeFormatError, true},
		{"an OPT of version 1", packed(t, func(m *dns.Msg) { opt(m); m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers, true},
		{"no question", packed(t, func(m *dns.Msg) { opt(m); m.Question = nil }), dns.RcodeFormatError, true},
		{"two questions", packed(t, func(m *dns.Msg) { opt(m); m.Question = append(m.Question, m.Question[0]) }), dns.RcodeFormatError, true},
		{"an UPDATE", packed(t, func(m *dns.Msg) { opt(m); m.Opcode = dns.OpcodeUpdate }), dns.RcodeNotImplemented, true},
		{"a STATUS query", packed(t, func(m *dns.Msg) { opt(m); m.Opcode = dns.OpcodeStatus }), dns.RcodeNotImplemented, true},
		{"a name outside every block", packed(t, func(m *dns.Msg) { opt(m); m.Question[0].Name = "example.org." }), dns.RcodeRefused, true},
		{"the same without EDNS", packed(t, func(m *dns.Msg) { m.Question[0].Name = "example.org." }), dns.RcodeRefused, false},
		{"a body that does not parse", garbage, dns.RcodeFormatError, false},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+", "+tt.name, func(t *testing.T) {
				_, before := rec.last()
				r := rawExchange(t, network, addr, tt.req)
				if r == nil {
					t.Fatal("no reply")
				}
				if r.Rcode != tt.rcode || r.Id != 0x1234 || !r.Response {
					t.Fatalf("rcode %s (%d), want %s:\n%v", dns.RcodeToString[r.Rcode], r.Rcode, dns.RcodeToString[tt.rcode], r)
				}
				if o := r.IsEdns0(); (o != nil) != tt.opt {
					t.Fatalf("OPT in the reply: %v, want %v:\n%v", o != nil, tt.opt, r)
				} else if o != nil && (o.Version() != 0 || !o.Do() || o.UDPSize() != 1232) {
					t.Fatalf("OPT %v, want version 0, DO, 1232 bytes", o)
				}
				var rcode, n int
				deadline := time.Now().Add(time.Second) // the Observer runs after the write
				for rcode, n = rec.last(); n == before && time.Now().Before(deadline); rcode, n = rec.last() {
					time.Sleep(time.Millisecond)
				}
				if n != before+1 || rcode != tt.rcode {
					t.Fatalf("observed %d replies (last rcode %d), want one with rcode %d", n-before, rcode, tt.rcode)
				}
			})
		}
	}
	t.Run("a response gets no reply", func(t *testing.T) {
		if r := rawExchange(t, "udp", addr, packed(t, func(m *dns.Msg) { m.Response = true })); r != nil {
			t.Fatalf("a reply to a response:\n%v", r)
		}
	})
}

// Go's resolver drops a whole SRV answer naming a target whose label ends
// in a dash: an endpoint at 2001:db8:: must be 2001-db8--0, as in CoreDNS.
func TestGoResolverTakesSRVTargetsOfAddressesEndingInDoubleColon(t *testing.T) {
	svc := &zones.Service{Namespace: "ns", Name: "v6", Type: zones.Headless}
	sl := (&zones.EndpointSlice{Namespace: "ns", Name: "v6-1", Service: "v6",
		Ports: []zones.Port{{Name: "http", Protocol: "tcp", Port: 80}}}).WithEndpoints(
		zones.Endpoint{Addresses: []netip.Addr{netip.MustParseAddr("2001:db8::")}, Ready: true})
	addr := startServer(t, newTestHandler(t, kubeadmOptions(), nil, []zones.Object{svc, sl}))
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, srvs, err := r.LookupSRV(ctx, "http", "tcp", "v6.ns.svc.cluster.local.")
	if err != nil {
		t.Fatalf("LookupSRV: %v", err)
	}
	if len(srvs) != 1 || srvs[0].Target != "2001-db8--0.v6.ns.svc.cluster.local." {
		t.Fatalf("SRV targets %+v, want 2001-db8--0.v6.ns.svc.cluster.local.", srvs)
	}
	addrs, err := r.LookupHost(ctx, srvs[0].Target)
	if err != nil || len(addrs) != 1 || addrs[0] != "2001:db8::" {
		t.Fatalf("the target resolves to %v (%v), want [2001:db8::]", addrs, err)
	}
}
