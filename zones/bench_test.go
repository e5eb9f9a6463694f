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
