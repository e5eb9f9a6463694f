package resolver

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	plog "github.com/svcdisc/svcdisc/plugin/log"
	"github.com/svcdisc/svcdisc/zones"
)

// kept asks h for name and qtype on the fast path and returns the entry
// the cache then holds for that query, and the query's key.
func kept(t *testing.T, h *Handler, name string, qtype uint16, edns bool) (*wireEntry, []byte) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	req, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	h.ServeFast(req, make([]byte, dns.MaxMsgSize), false)
	var keyBuf [260]byte
	q, ok := parseQuery(req, keyBuf[:])
	if !ok {
		t.Fatalf("%s %s: not a plain query", name, dns.TypeToString[qtype])
	}
	key := append([]byte(nil), q.key...)
	return h.wire.get(key, h.wire.hash(key)), key
}

// A kept reply is held at its length: the packed message's own buffer is
// about three times that, and the cache keeps up to 131,072 replies.
func TestWireCacheKeepsAReplyAtItsLength(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, fastTestCluster())
	for _, tt := range []struct {
		desc, name string
		qtype      uint16
	}{
		{"address", "svc-1.ns-1.svc.cluster.local.", dns.TypeA},
		{"SRV", "_http._tcp.svc-1.ns-1.svc.cluster.local.", dns.TypeSRV},
		{"search-path NXDOMAIN", "svc-1.ns-1.svc.cluster.local.ns-1.svc.cluster.local.", dns.TypeA},
		{"headless", "hl.ns-1.svc.cluster.local.", dns.TypeA},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			e, _ := kept(t, h, tt.name, tt.qtype, true)
			if e == nil {
				t.Fatal("no reply kept")
			}
			// At most the allocator's next size class above the length.
			if n, c := len(e.full.msg), cap(e.full.msg); c > n+n/8+16 {
				t.Errorf("a reply of %d bytes holds %d", n, c)
			}
		})
	}
}

// A zone change that leaves a name's records alone keeps its entry, made
// current in place: copying every entry hit after each of a busy
// cluster's changes would be garbage at the rate of the queries.
func TestWireCacheKeepsAnEntryAcrossAChangeElsewhere(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, fastTestCluster())
	z := h.blocks[0].block.Zone
	const name = "svc-1.ns-1.svc.cluster.local."
	before, _ := kept(t, h, name, dns.TypeA, true)
	if before == nil {
		t.Fatal("no reply kept")
	}
	gen := z.Generation()
	z.Update(&zones.Service{Namespace: "ns-4", Name: "new", Type: zones.ClusterIP,
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.200.1")}, More: &zones.ServiceMore{ClusterIPText: "10.96.200.1"}})
	if z.Generation() == gen {
		t.Fatal("the change did not move the zone's generation")
	}
	after, _ := kept(t, h, name, dns.TypeA, true)
	if after != before {
		t.Error("the entry was replaced")
	}
	if got, want := after.gen.Load(), z.Generation(); got != want {
		t.Errorf("entry current at generation %d, zone at %d", got, want)
	}
}

// The cache finds an entry by its key's hash: an entry is handed out only
// for the query it answers (name, type, EDNS flags), whatever slot it is in.
func TestWireCacheEntryAnswersOnlyItsQuery(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, fastTestCluster())
	e, key := kept(t, h, "svc-1.ns-1.svc.cluster.local.", dns.TypeA, true)
	if e == nil {
		t.Fatal("no reply kept")
	}
	_, plainKey := kept(t, h, "svc-1.ns-1.svc.cluster.local.", dns.TypeA, false)
	_, aaaaKey := kept(t, h, "svc-1.ns-1.svc.cluster.local.", dns.TypeAAAA, true)
	_, otherKey := kept(t, h, "svc-2.ns-2.svc.cluster.local.", dns.TypeA, true)
	for _, tt := range []struct {
		desc string
		key  []byte
	}{
		{"without EDNS", plainKey},
		{"AAAA", aaaaKey},
		{"another name", otherKey},
		{"a name that ends like it", append([]byte{1, 'x'}, key...)},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			slot := h.wire.hash(tt.key)
			h.wire.put(slot, e, wireCacheMax) // a collision: e in that query's slot
			if got := h.wire.get(tt.key, slot); got != nil {
				t.Error("the entry was handed out for another query")
			}
		})
	}
	if got := h.wire.get(key, h.wire.hash(key)); got != e {
		t.Error("the entry is not found for its own query")
	}
}

// A query the fast path declined keeps an entry that says so, found again
// for the next such query: it spares running the chain to learn it again.
func TestWireCacheFindsADeclinedQueryAgain(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, fastTestCluster())
	b := h.blocks[0].block
	b.Chain = &plog.Handler{Rules: []config.LogRule{{Name: ".", Format: "{name}", Classes: []string{"all"}}},
		Log: slog.New(slog.DiscardHandler), Next: b.Chain}
	first, _ := kept(t, h, "svc-1.ns-1.svc.cluster.local.", dns.TypeA, false)
	if first == nil || !first.declined {
		t.Fatalf("kept %+v, want a declined entry", first)
	}
	if again, _ := kept(t, h, "svc-1.ns-1.svc.cluster.local.", dns.TypeA, false); again != first {
		t.Error("the declined entry was not found again")
	}
}
