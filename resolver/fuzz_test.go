package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds whole DNS messages, as they arrive on the wire, to the
// handler: whatever parses must get an answer that packs and fits the
// client's buffer, and nothing may panic.
func FuzzHandler(f *testing.F) {
	seed := func(name string, t uint16, edns bool) {
		m := new(dns.Msg)
		m.SetQuestion(name, t)
		if edns {
			m.SetEdns0(1232, true)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed("web.shop.svc.cluster.local.", dns.TypeA, false)
	seed("_mysql._tcp.db.shop.svc.cluster.local.", dns.TypeSRV, true)
	seed("WEB.shop.svc.cluster.local.shop.svc.cluster.local.", dns.TypeAAAA, true)
	seed("1.1.96.10.in-addr.arpa.", dns.TypePTR, false)
	seed("alias.shop.svc.cluster.local.", dns.TypeANY, true)
	seed("1-2-3-4.shop.pod.cluster.local.", dns.TypeA, false)
	seed("cluster.local.", dns.TypeAXFR, false)
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})

	h := newTestHandler(f, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, loadObjects(f, "testdata/cluster.yaml"))
	f.Fuzz(func(t *testing.T, wire []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(wire); err != nil {
			return // the server answers FORMERR or nothing before the handler
		}
		if r.Response || len(r.Question) == 0 {
			return // dropped or rejected by the server's accept function
		}
		m, _ := h.answer(r)
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		fit(m, size)
		out, err := m.Pack()
		if err != nil {
			t.Fatalf("answer does not pack: %v\n%v", err, m)
		}
		if len(out) > size {
			t.Fatalf("answer of %d bytes exceeds the client's %d", len(out), size)
		}
	})
}
