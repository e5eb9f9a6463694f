package resolver

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/internal/clustergen"
)

// BenchmarkServeFastManyNames asks A for Services picked at random among
// all of a cluster's, as dnsperf's cluster-A mix does, after asking each
// once: whether the answer path keeps its speed as the cluster grows (with
// a cache of 32,768 replies, 100,000 Services took 24 µs a query against
// 0.2 µs at 10,000).
func BenchmarkServeFastManyNames(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			objs := clustergen.Generate(clustergen.Spec{Namespaces: 100, Services: n})
			h := newTestHandler(b, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, objs)
			reqs := make([][]byte, 2*n) // every Service about twice, in random order
			r := rand.New(rand.NewPCG(1, 2))
			for i := range reqs {
				j := r.IntN(n)
				m := new(dns.Msg)
				m.SetQuestion(fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.", j, j%100), dns.TypeA)
				m.SetEdns0(1232, false)
				reqs[i], _ = m.Pack()
			}
			out := make([]byte, dns.MaxMsgSize)
			for _, req := range reqs { // warm: dnsperf's runs are long
				if _, ok := h.ServeFast(req, out, false); !ok {
					general(h, req)
				}
			}
			i := 0
			for b.Loop() {
				req := reqs[i%len(reqs)]
				i++
				if _, ok := h.ServeFast(req, out, false); !ok {
					general(h, req)
				}
			}
		})
	}
}

// TestWireCacheGrowsWithTheCluster: the fast path keeps two replies a
// Service beyond its floor, so a large cluster's names stay on it.
func TestWireCacheGrowsWithTheCluster(t *testing.T) {
	for _, tt := range []struct{ services, want int }{
		{0, wireCacheMin},
		{10_000, wireCacheMin},
		{20_000, 40_000},
	} {
		objs := clustergen.Generate(clustergen.Spec{Namespaces: 10, Services: tt.services})
		h := newTestHandler(t, kubeadmOptions(), nil, objs)
		z := h.blocks[0].block.Zone
		if got := z.Services(); got < tt.services {
			t.Errorf("%d Services: the zone counts %d", tt.services, got)
		}
		if got := wireLimit(z); got < tt.want || got > tt.want+10 {
			t.Errorf("%d Services: the cache keeps %d replies, want %d", tt.services, got, tt.want)
		}
	}
}

// TestWireCacheFitsTheMemoryLimit: under a memory limit the kept replies
// take at most a tenth of it, and never fewer than the floor.
func TestWireCacheFitsTheMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		name     string
		services int
		limit    int64
		want     int
	}{
		{"no limit, small cluster", 1_000, math.MaxInt64, wireCacheMin},
		{"no limit, large cluster", 100_000, math.MaxInt64, wireCacheMax},
		{"a limit the cache fits in", 100_000, 2048 * mib, wireCacheMax},
		{"170 MiB container, large cluster", 100_000, 153 * mib, 153 * mib / 10 / wireReplyBytes},
		{"170 MiB container, small cluster", 1_000, 153 * mib, wireCacheMin},
		{"a tiny limit", 100_000, 8 * mib, wireCacheFloor},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := wireLimitFor(tt.services, tt.limit); got != tt.want {
				t.Errorf("keeps %d replies, want %d", got, tt.want)
			}
		})
	}
}

// BenchmarkWireCacheMemory reports what the fast path's cache holds per
// kept reply (bytes/reply: the reply, where to patch it, the entry and its
// map slot), for a cluster-A, SRV and ndots:5 NXDOMAIN mix over 10,000
// Services: at 100,000 Services the cache keeps 131,072 replies, a fifth
// of the zone.
func BenchmarkWireCacheMemory(b *testing.B) {
	const services = 10_000
	objs := clustergen.Generate(clustergen.Spec{Namespaces: 100, Services: services})
	var reqs [][]byte
	for i := range services {
		for _, q := range []struct {
			name  string
			qtype uint16
		}{
			{fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.", i, i%100), dns.TypeA},
			{fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.ns-%d.svc.cluster.local.", i, i%100, i%100), dns.TypeA},
			{fmt.Sprintf("_http._tcp.svc-%d.ns-%d.svc.cluster.local.", i, i%100), dns.TypeSRV},
		} {
			m := new(dns.Msg)
			m.SetQuestion(q.name, q.qtype)
			m.SetEdns0(1232, false)
			req, _ := m.Pack()
			reqs = append(reqs, req)
		}
	}
	out := make([]byte, dns.MaxMsgSize)
	var perReply float64
	for b.Loop() {
		h := newTestHandler(b, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, objs)
		before := heapInUse()
		for _, req := range reqs {
			if _, ok := h.ServeFast(req, out, false); !ok {
				general(h, req)
			}
		}
		kept := 0
		for i := range h.wire.shards {
			kept += len(h.wire.shards[i].m)
		}
		perReply = float64(heapInUse()-before) / float64(kept)
		runtime.KeepAlive(h)
	}
	b.ReportMetric(perReply, "bytes/reply")
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
