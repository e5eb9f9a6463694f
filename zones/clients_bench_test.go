package zones

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
)

// heap is the live heap after a full collection.
func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// manyPods are n Running Pods, 500 a namespace, one IPv4 address each.
func manyPods(n int) []*Pod {
	pods := make([]*Pod, n)
	for i := range pods {
		pods[i] = &Pod{
			Namespace: fmt.Sprintf("ns-%d", i/500),
			Name:      fmt.Sprintf("app-%d-7d9f8b6c5d-x%05d", i%500, i),
			IPs:       []netip.Addr{netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})},
			Running:   true,
		}
	}
	return pods
}

// BenchmarkClientIndex150kPods reports the memory of autopath's client
// index at 150,000 Pods: index-bytes/pod is the index alone (a map slot of
// a 16-byte key and a pointer, and the map's own overhead; the Pods are the
// zone's own objects), zone-bytes/pod the Pods held by a zone with pods
// verified, index included (no records: pod names are answered from the
// index). A note, not an assertion: the numbers vary with Go's map growth.
func BenchmarkClientIndex150kPods(b *testing.B) {
	const n = 150_000
	for b.Loop() {
		pods := manyPods(n)
		before := heap()
		var c clientIndex
		for _, p := range pods {
			c.swap(nil, p)
		}
		index := heap() - before
		runtime.KeepAlive(&c)
		b.ReportMetric(float64(index)/n, "index-bytes/pod")

		pods = nil
		before = heap()
		z := New(Options{Zones: []string{"cluster.local."}, TTL: 30, Pods: PodsVerified})
		objs := make([]Object, n)
		for i, p := range manyPods(n) {
			objs[i] = p
		}
		z.Replace(objs)
		objs = nil
		zone := heap() - before
		runtime.KeepAlive(z)
		b.ReportMetric(float64(zone)/n, "zone-bytes/pod")
		if _, ok := z.clients.lookup(netip.AddrFrom4([4]byte{10, 0, 0, 7})); !ok {
			b.Fatal("a Pod's address is not in the index")
		}
	}
}
