package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// shape is the synthetic cluster: Service i is svc-<i> in ns-<i mod
// Namespaces>, and everything about it follows from i, so that the steps
// can add Services without remembering the earlier ones and every run
// builds the same cluster.
type shape struct {
	Namespaces int
	// PerService is the mean number of endpoints (Pods) of a Service.
	PerService int
	Zone       string
}

// maxSlice is the endpoints an EndpointSlice holds, as the
// EndpointSlice controller's default --max-endpoints-per-slice.
const maxSlice = 100

// weights spreads endpoints unevenly, as in a cluster: in every 100 Services
// the counts of i mod 10 follow this pattern (in tenths of PerService), and
// Service 99 of each hundred has bigWeight instead, so that it needs three
// slices. The mean is exactly PerService: (10×80 − 30 + 230) / 100 = 10 tenths.
var weights = [10]int{1, 2, 3, 4, 5, 6, 8, 10, 11, 30}

const bigWeight = 230

// svc is one Service of the shape.
type svc struct {
	I         int
	NS, Name  string
	Headless  bool // 10%: i mod 20 is 2 or 8
	Hostnames bool // headless ones of a StatefulSet (i mod 20 == 8) name their endpoints
	DualStack bool // 10%: i mod 10 == 5, ipFamilyPolicy PreferDualStack, an IPv6 slice too
	Pods      int  // endpoints per address family
}

func (s shape) service(i int) svc {
	w := weights[i%10]
	if i%100 == 99 {
		w = bigWeight
	}
	return svc{
		I:         i,
		NS:        fmt.Sprintf("ns-%d", i%s.Namespaces),
		Name:      fmt.Sprintf("svc-%d", i),
		Headless:  i%20 == 2 || i%20 == 8,
		Hostnames: i%20 == 8,
		DualStack: i%10 == 5,
		Pods:      max(1, (w*s.PerService+5)/10),
	}
}

// fqdn is the Service's name in the cluster zone, with the final dot.
func (s shape) fqdn(v svc) string { return fmt.Sprintf("%s.%s.svc.%s.", v.Name, v.NS, s.Zone) }

// podOffset is the number of Pods of Services 0..i-1: the index of
// Service i's first Pod, from which its addresses come.
func (s shape) podOffset(i int) int {
	var per100, prefix int
	for j := range 100 {
		if j == i%100 {
			prefix = per100
		}
		per100 += s.service(j).Pods
	}
	return i/100*per100 + prefix
}

// counts of a cluster of the first n Services.
type counts struct {
	Services, Headless, DualStack, Slices, Endpoints int
}

func (s shape) count(n int) counts {
	var c counts
	for i := range n {
		v := s.service(i)
		c.Services++
		fam := 1
		if v.Headless {
			c.Headless++
		}
		if v.DualStack {
			c.DualStack++
			fam = 2
		}
		c.Slices += fam * ((v.Pods + maxSlice - 1) / maxSlice)
		c.Endpoints += fam * v.Pods
	}
	return c
}

// podAddr is Pod n's address: IPv4 from 10.128.0.0/9, IPv6 from
// fd00:10:244::/64.
func podAddr(n int, v6 bool) netip.Addr {
	if v6 {
		a := [16]byte{0xfd, 0, 0, 0x10, 0x02, 0x44}
		a[12], a[13], a[14], a[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4([4]byte{10, byte(128 + n>>16&0x7f), byte(n >> 8), byte(n)})
}

// ready says whether endpoint j of Service i starts ready: one in 20 is not.
func ready(i, j int) bool { return (7*i+j)%20 != 0 }

// readyAddrs is what an A query for a headless Service answers.
func (s shape) readyAddrs(v svc) []netip.Addr {
	off := s.podOffset(v.I)
	var out []netip.Addr
	for j := range v.Pods {
		if ready(v.I, j) {
			out = append(out, podAddr(off+j, false))
		}
	}
	return out
}

func (s shape) serviceObject(v svc) *corev1.Service {
	o := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: v.Name, Namespace: v.NS, Labels: map[string]string{"app": v.Name}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP},
		}},
	}
	if v.Headless {
		o.Spec.ClusterIP = corev1.ClusterIPNone
		o.Spec.Ports = o.Spec.Ports[:1]
	}
	if v.DualStack {
		p := corev1.IPFamilyPolicyPreferDualStack
		o.Spec.IPFamilyPolicy = &p
	}
	return o
}

// sliceObjects are the Service's EndpointSlices: up to maxSlice endpoints
// each, IPv4, plus the same Pods' IPv6 addresses for a dual-stack one.
func (s shape) sliceObjects(v svc) []*discoveryv1.EndpointSlice {
	off := s.podOffset(v.I)
	fams := []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
	if v.DualStack {
		fams = append(fams, discoveryv1.AddressTypeIPv6)
	}
	portNames := []string{"http", "metrics"}
	portNums := []int32{8080, 9090}
	if v.Headless {
		portNames, portNums = portNames[:1], portNums[:1]
	}
	var out []*discoveryv1.EndpointSlice
	for _, fam := range fams {
		for k := 0; k*maxSlice < v.Pods; k++ {
			sl := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					Name:      fmt.Sprintf("%s-%s-%d", v.Name, map[discoveryv1.AddressType]string{"IPv4": "v4", "IPv6": "v6"}[fam], k),
					Namespace: v.NS,
					Labels: map[string]string{
						discoveryv1.LabelServiceName: v.Name,
						discoveryv1.LabelManagedBy:   "scalebench",
					},
				},
				AddressType: fam,
			}
			for p := range portNames {
				proto := corev1.ProtocolTCP
				sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: &portNames[p], Port: &portNums[p], Protocol: &proto})
			}
			for j := k * maxSlice; j < min(v.Pods, (k+1)*maxSlice); j++ {
				r := ready(v.I, j)
				e := discoveryv1.Endpoint{
					Addresses:  []string{podAddr(off+j, fam == discoveryv1.AddressTypeIPv6).String()},
					Conditions: discoveryv1.EndpointConditions{Ready: &r},
					TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: v.NS, Name: fmt.Sprintf("%s-%d", v.Name, j)},
				}
				if v.Hostnames {
					h := fmt.Sprintf("%s-%d", v.Name, j)
					e.Hostname = &h
				}
				sl.Endpoints = append(sl.Endpoints, e)
			}
			out = append(out, sl)
		}
	}
	return out
}

// writeA writes dnsperf input: lines queries of A for ClusterIP Services
// among the first n, uniformly at random (seeded: every run the same).
func (s shape) writeA(w io.Writer, n, lines int) error {
	r := rand.New(rand.NewPCG(1, 1))
	for range lines {
		v := s.clusterIPService(r, n)
		if _, err := fmt.Fprintf(w, "%s A\n", s.fqdn(v)); err != nil {
			return err
		}
	}
	return nil
}

// writeNXDomain writes what a Pod's resolver sends with ndots:5 and the
// search path NS.svc.ZONE svc.ZONE ZONE for Services in other namespaces
// (as hack/dnsbench): half the full name without the final dot (three
// NXDOMAIN expansions, then the name), half svc.ns (one NXDOMAIN, then
// found). About 2/3 of the lines are NXDOMAIN.
func (s shape) writeNXDomain(w io.Writer, n, lines int) error {
	r := rand.New(rand.NewPCG(1, 2))
	var out []string
	for len(out) < lines {
		v := s.clusterIPService(r, n)
		pod := fmt.Sprintf("ns-%d", r.IntN(s.Namespaces))
		search := []string{pod + ".svc." + s.Zone, "svc." + s.Zone, s.Zone}
		if r.IntN(2) == 0 {
			name := fmt.Sprintf("%s.%s.svc.%s", v.Name, v.NS, s.Zone)
			for _, d := range search {
				out = append(out, name+"."+d)
			}
			out = append(out, name)
			continue
		}
		short := v.Name + "." + v.NS
		out = append(out, short+"."+search[0], short+"."+search[1])
	}
	for _, l := range out[:lines] {
		if _, err := fmt.Fprintf(w, "%s A\n", l); err != nil {
			return err
		}
	}
	return nil
}

func (s shape) clusterIPService(r *rand.Rand, n int) svc {
	for {
		if v := s.service(r.IntN(n)); !v.Headless {
			return v
		}
	}
}
