package zones

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestEndpointsReadBackAsWritten(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name string
		eps  []Endpoint
	}{
		{"no endpoint", nil},
		{"one ready IPv4 address", []Endpoint{{Addresses: []netip.Addr{a("10.0.0.1")}, Ready: true}}},
		{"a not-ready endpoint among ready ones", []Endpoint{
			{Addresses: []netip.Addr{a("10.0.0.1")}, Ready: true},
			{Addresses: []netip.Addr{a("10.0.0.2")}},
			{Addresses: []netip.Addr{a("10.0.0.3")}, Ready: true}}},
		{"a hostname after endpoints without one", []Endpoint{
			{Addresses: []netip.Addr{a("10.0.0.1")}, Ready: true},
			{Addresses: []netip.Addr{a("10.0.0.2")}, Name: "web-1", Ready: true}}},
		{"a Pod name next to a hostname", []Endpoint{
			{Addresses: []netip.Addr{a("10.0.0.1")}, Name: "web-7f9c-abcde", PodName: true, Ready: true},
			{Addresses: []netip.Addr{a("10.0.0.2")}, Name: "db-0", Ready: true}}},
		{"several addresses, and none", []Endpoint{
			{Addresses: []netip.Addr{a("10.0.0.1")}, Ready: true},
			{Addresses: []netip.Addr{a("10.0.0.2"), a("10.0.0.3")}, Ready: true},
			{Ready: true},
			{Addresses: []netip.Addr{a("10.0.0.4")}}}},
		{"IPv6", []Endpoint{{Addresses: []netip.Addr{a("fd00::1")}, Ready: true}}},
		{"four IPv4 addresses, as many bytes as one IPv6", []Endpoint{
			{Addresses: []netip.Addr{a("10.0.0.1"), a("10.0.0.2"), a("10.0.0.3"), a("10.0.0.4")}, Ready: true}}},
		{"IPv4-like bytes in IPv6", []Endpoint{{Addresses: []netip.Addr{a("a00:1:a00:2:a00:3:a00:4")}, Ready: true}}},
		{"IPv6 after IPv4 widens what came before", []Endpoint{
			{Addresses: []netip.Addr{a("10.0.0.1")}, Ready: true},
			{Addresses: []netip.Addr{a("fd00::1"), a("10.0.0.2")}, Ready: true}}},
		{"more than 64 endpoints, the last not ready", func() []Endpoint {
			eps := make([]Endpoint, 70)
			for i := range eps {
				eps[i] = Endpoint{Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})}, Ready: i != 69}
			}
			return eps
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := (&EndpointSlice{}).WithEndpoints(tt.eps...)
			if got := e.Endpoints(); !reflect.DeepEqual(got, tt.eps) {
				t.Errorf("Endpoints() = %v, want %v", got, tt.eps)
			}
			if e.Len() != len(tt.eps) {
				t.Errorf("Len() = %d, want %d", e.Len(), len(tt.eps))
			}
			// An equal list packs to an equal slice: the zone finds equal
			// objects with reflect.DeepEqual.
			again := (&EndpointSlice{}).WithEndpoints(slices.Clone(tt.eps)...)
			if !reflect.DeepEqual(e, again) {
				t.Errorf("two packings of the same endpoints differ: %+v, %+v", e.eps, again.eps)
			}
		})
	}
}

func TestEndpointsKeepAddressesUnmapped(t *testing.T) {
	e := (&EndpointSlice{}).WithEndpoints(Endpoint{Addresses: []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.1")}, Ready: true})
	if got := e.Endpoints()[0].Addresses[0]; got != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("address = %v, want 10.0.0.1", got)
	}
}

func TestDroppingPodNamesKeepsHostnames(t *testing.T) {
	a := netip.MustParseAddr
	e := (&EndpointSlice{}).WithEndpoints(
		Endpoint{Addresses: []netip.Addr{a("10.0.0.1")}, Name: "web-abcde", PodName: true, Ready: true},
		Endpoint{Addresses: []netip.Addr{a("10.0.0.2")}, Name: "db-0", Ready: true})
	e.dropPodNames()
	want := []Endpoint{{Addresses: []netip.Addr{a("10.0.0.1")}, Ready: true}, {Addresses: []netip.Addr{a("10.0.0.2")}, Name: "db-0", Ready: true}}
	if got := e.Endpoints(); !reflect.DeepEqual(got, want) {
		t.Errorf("Endpoints() = %v, want %v", got, want)
	}
	only := (&EndpointSlice{}).WithEndpoints(Endpoint{Addresses: []netip.Addr{a("10.0.0.1")}, Name: "web-abcde", PodName: true, Ready: true})
	only.dropPodNames()
	if want := (&EndpointSlice{}).WithEndpoints(Endpoint{Addresses: []netip.Addr{a("10.0.0.1")}, Ready: true}); !reflect.DeepEqual(only, want) {
		t.Errorf("without its Pod names, a slice is not the one that never had any: %+v", only.eps)
	}
}

// TestPublishedEndpointsFollowTheirDefinition checks what a view publishes
// (through External, which reads it back) against the definition, for
// random Services: each published address under its label, ordered by
// label then address, and the distinct (port, label) pairs, ordered by
// port name, protocol, label and number. The packed view spells dashed
// labels again and derives the pairs when the slices share their ports:
// both must read back the same.
func TestPublishedEndpointsFollowTheirDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	portPool := []Port{{"http", "tcp", 80}, {"http", "tcp", 8080}, {"http", "udp", 80}, {"dns", "udp", 53},
		{"", "tcp", 9090}, {"grpc", "tcp", 9000}}
	hostPool := []string{"web-0", "web-1", "10-0-0-1", "a", "z"}
	v4 := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(6))}) }
	v6 := func() netip.Addr {
		var b [16]byte
		b[0], b[1], b[15] = 0xfd, 0, byte(rng.IntN(4))
		if rng.IntN(3) == 0 {
			b[0] = 0 // begins with "::"
		}
		if rng.IntN(3) == 0 {
			b[15] = 0 // ends with "::"
		}
		return netip.AddrFrom16(b)
	}
	for iter := range 2000 {
		podNames := rng.IntN(2) == 0
		z := New(Options{Zones: []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}, TTL: 5, EndpointPodNames: podNames})
		svc := &Service{Namespace: "ns", Name: "s", Type: Headless, PublishNotReady: rng.IntN(4) == 0}
		objs := []Object{svc}
		var slicesIn []*EndpointSlice
		shared := portSubset(rng, portPool)
		for s := range 1 + rng.IntN(3) {
			sl := &EndpointSlice{Namespace: "ns", Name: fmt.Sprintf("s-%d", s), Service: "s", Ports: shared}
			if rng.IntN(3) == 0 {
				sl.Ports = portSubset(rng, portPool)
			}
			addr := v4
			if rng.IntN(3) == 0 {
				addr = v6
			}
			sl.WithEndpoints(randomEndpoints(rng, addr, hostPool, 1+rng.IntN(2)*rng.IntN(3))...)
			slicesIn = append(slicesIn, sl)
			objs = append(objs, sl)
		}
		z.Replace(objs)
		wantEPs, wantPorts := definedEndpoints(svc, slicesIn, podNames)
		v, _ := z.External("ns", "s")
		if !slices.Equal(v.Endpoints, wantEPs) || !slices.Equal(v.Ports, wantPorts) {
			t.Fatalf("case %d: published\n%v\n%v\nwant\n%v\n%v\nslices %+v", iter, v.Endpoints, v.Ports, wantEPs, wantPorts, slicesIn)
		}
	}
}

// randomEndpoints is up to four endpoints, ready or not, of up to
// maxAddrs addresses from addr each, some under a hostname from hostPool
// and some under a Pod's name (one with dots, which is not a label).
func randomEndpoints(rng *rand.Rand, addr func() netip.Addr, hostPool []string, maxAddrs int) []Endpoint {
	var eps []Endpoint
	for range rng.IntN(5) {
		ep := Endpoint{Ready: rng.IntN(4) != 0}
		for range 1 + rng.IntN(maxAddrs) {
			ep.Addresses = append(ep.Addresses, addr())
		}
		switch rng.IntN(4) {
		case 0:
			ep.Name = hostPool[rng.IntN(len(hostPool))]
		case 1:
			ep.Name, ep.PodName = []string{"pod-x", "pod.with.dots", "web-0"}[rng.IntN(3)], true
		}
		eps = append(eps, ep)
	}
	return eps
}

func portSubset(rng *rand.Rand, pool []Port) []Port {
	var out []Port
	for _, p := range pool {
		if rng.IntN(3) == 0 {
			out = append(out, p)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// definedEndpoints is what the DNS spec (and CoreDNS) make of a Service's
// slices, written out plainly.
func definedEndpoints(svc *Service, sls []*EndpointSlice, podNames bool) ([]PublishedEndpoint, []EndpointPort) {
	seen := map[PublishedEndpoint]bool{}
	seenPort := map[EndpointPort]bool{}
	var eps []PublishedEndpoint
	var ports []EndpointPort
	for _, sl := range sls {
		for _, ep := range sl.Endpoints() {
			if !ep.Ready && !svc.PublishNotReady {
				continue
			}
			for _, a := range ep.Addresses {
				label := dashedReference(a)
				if ep.Name != "" && (!ep.PodName || podNames && !strings.Contains(ep.Name, ".")) {
					label = ep.Name
				}
				if e := (PublishedEndpoint{label, a}); !seen[e] {
					seen[e] = true
					eps = append(eps, e)
				}
				for _, p := range sl.Ports {
					if ep := (EndpointPort{label, p}); !seenPort[ep] {
						seenPort[ep] = true
						ports = append(ports, ep)
					}
				}
			}
		}
	}
	slices.SortFunc(eps, func(a, b PublishedEndpoint) int {
		return cmp.Or(strings.Compare(a.Label, b.Label), a.Addr.Compare(b.Addr))
	})
	slices.SortFunc(ports, func(a, b EndpointPort) int {
		return cmp.Or(strings.Compare(a.Port.Name, b.Port.Name), strings.Compare(a.Port.Protocol, b.Port.Protocol),
			strings.Compare(a.Label, b.Label), cmp.Compare(a.Port.Port, b.Port.Port))
	})
	return eps, ports
}

// dashedReference is dashed the plain way: the address's text with dashes
// for dots or colons, and a "0" where an IPv6 one would begin or end with a
// dash.
func dashedReference(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "-")
	}
	s := strings.ReplaceAll(a.String(), ":", "-")
	if strings.HasPrefix(s, "-") {
		s = "0" + s
	}
	if strings.HasSuffix(s, "-") {
		s += "0"
	}
	return s
}

func TestDashedSpellsEveryAddressAsOneLabel(t *testing.T) {
	for _, s := range []string{"10.0.0.1", "0.0.0.0", "255.255.255.255", "2001:db8::", "::1", "::", "fd00::5", "2001:db8:1:2:3:4:5:6"} {
		a := netip.MustParseAddr(s)
		if got, want := dashed(a), dashedReference(a); got != want {
			t.Errorf("dashed(%s) = %q, want %q", s, got, want)
		}
	}
}
