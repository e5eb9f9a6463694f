package zones_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/svcdisc/svcdisc/internal/clustergen"
	"github.com/svcdisc/svcdisc/zones"
)

// BenchmarkEndpointSliceUpdate measures applying one EndpointSlice change
// (a readiness flip of a 10-endpoint headless Service) in clusters of
// growing size: the cost must not grow with the cluster.
func BenchmarkEndpointSliceUpdate(b *testing.B) {
	for _, services := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			z := zones.New(zones.Options{Zones: []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}, TTL: 30})
			z.Replace(clustergen.Generate(clustergen.Spec{Namespaces: 100, Services: services}))
			ready := clustergen.Headless("ns-1", "hl", 1, 10, true)
			notReady := clustergen.Headless("ns-1", "hl", 1, 10, false)
			z.Update(ready[0])
			runtime.GC() // the setup's garbage is not the update's cost
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					z.Update(notReady[1])
				} else {
					z.Update(ready[1])
				}
				i++
			}
		})
	}
}

// BenchmarkLookup measures Zone.Lookup for the names a view makes at each
// lookup (a Service's names, its endpoints' names, PTRs): what a query
// the fast path has not kept costs. 10,000 ClusterIP Services of one
// endpoint and 100 headless Services of 10 named endpoints.
func BenchmarkLookup(b *testing.B) {
	z := zones.New(zones.Options{Zones: []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}, TTL: 30})
	z.Replace(clustergen.Generate(clustergen.Spec{Namespaces: 100, Services: 10_000, Headless: 100, Endpoints: 10}))
	for _, name := range []string{
		"svc-5.ns-5.svc.cluster.local.",
		"_http._tcp.svc-5.ns-5.svc.cluster.local.",
		"10-244-0-5.svc-5.ns-5.svc.cluster.local.",
		"hl-3.ns-3.svc.cluster.local.",
		"_http._tcp.hl-3.ns-3.svc.cluster.local.",
		"hl-3-4.hl-3.ns-3.svc.cluster.local.",
		"5.0.96.10.in-addr.arpa.",
		"5.0.244.10.in-addr.arpa.",
		"34.0.128.10.in-addr.arpa.",
	} {
		if z.Lookup(name) == nil {
			b.Fatalf("%s does not exist", name)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				z.Lookup(name)
			}
		})
	}
}
