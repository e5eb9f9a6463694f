package zones

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestServiceNamesCountsWhatIsBuilt: for random Services of every type,
// the names counted without making the records are the names making them
// gives, in every forward zone; the shapes the count does not follow say
// so instead of counting wrong.
func TestServiceNamesCountsWhatIsBuilt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	portPool := []Port{{"http", "tcp", 80}, {"http", "tcp", 8080}, {"http", "udp", 80}, {"dns", "udp", 53},
		{"", "tcp", 9090}, {"grpc", "tcp", 9000}, {"a.b", "tcp", 1}}
	hostPool := []string{"web-0", "web-1", "10-0-0-1", "10-0-0-2", "a", "_srv", "x.y"}
	counted, fallback := 0, 0
	for iter := range 3000 {
		podNames := rng.IntN(2) == 0
		zones := []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}
		if rng.IntN(3) == 0 {
			zones = append(zones, "other.example.")
		}
		z := New(Options{Zones: zones, TTL: 5, EndpointPodNames: podNames})
		svc := &Service{Namespace: "ns", Name: "s", PublishNotReady: rng.IntN(4) == 0, Ports: portSubset(rng, portPool)}
		switch rng.IntN(4) {
		case 0, 1:
			svc.Type = ClusterIP
			if rng.IntN(5) != 0 {
				svc.ClusterIPs = []netip.Addr{netip.MustParseAddr("10.96.0.10")}
				if rng.IntN(3) == 0 {
					svc.ClusterIPs = append(svc.ClusterIPs, netip.MustParseAddr("fd00::10"))
				}
			}
		case 2:
			svc.Type = Headless
		case 3:
			svc.Type, svc.More = ExternalName, &ServiceMore{ExternalName: "example.com."}
		}
		var slicesIn sliceSet
		for s := range rng.IntN(3) {
			sl := &EndpointSlice{Namespace: "ns", Name: fmt.Sprintf("s-%d", s), Service: "s", Ports: portSubset(rng, portPool)}
			v4 := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(5))}) }
			sl.WithEndpoints(randomEndpoints(rng, v4, hostPool, 2)...)
			slicesIn = slicesIn.with(sl)
		}
		pub := z.publishedEndpoints(svc, slicesIn)
		want := z.builtServiceNames(svc, &pub)
		n, ok := serviceNames(svc, &pub)
		if !ok {
			fallback++
			continue
		}
		counted++
		if got := n * len(z.fwd); got != want {
			t.Fatalf("case %d: counted %d names, the records have %d\nService %+v\nslices %+v", iter, got, want, svc, slicesIn)
		}
	}
	if counted < 1000 || fallback == 0 {
		t.Errorf("counted %d cases, fell back in %d: the cases do not cover both", counted, fallback)
	}
}
