// Package clustergen generates synthetic clusters of slim objects for
// benchmarks: many ClusterIP Services with named ports spread over
// namespaces, and headless Services with ready endpoints.
package clustergen

import (
	"fmt"
	"net/netip"

	"github.com/svcdisc/svcdisc/zones"
)

// Spec sizes a cluster.
type Spec struct {
	Namespaces int
	// Services is the number of ClusterIP Services, each with ports http and
	// grpc and one ready endpoint.
	Services int
	// Headless Services each get Endpoints ready endpoints with hostnames.
	Headless  int
	Endpoints int
}

// Generate returns the objects of a cluster shaped by s. Names are
// svc-<i>.ns-<i mod Namespaces> and hl-<i>.ns-<i mod Namespaces>.
func Generate(s Spec) []zones.Object {
	var objs []zones.Object
	for i := range s.Namespaces {
		objs = append(objs, &zones.Namespace{Name: fmt.Sprintf("ns-%d", i)})
	}
	ports := []zones.Port{{Name: "http", Protocol: "tcp", Port: 80}, {Name: "grpc", Protocol: "tcp", Port: 9090}}
	for i := range s.Services {
		ns := fmt.Sprintf("ns-%d", i%s.Namespaces)
		name := fmt.Sprintf("svc-%d", i)
		objs = append(objs,
			&zones.Service{Namespace: ns, Name: name, Type: zones.ClusterIP,
				ClusterIPs: []netip.Addr{addr(10, 96, i)}, Ports: ports},
			(&zones.EndpointSlice{Namespace: ns, Name: name + "-1", Service: name, Ports: ports}).WithEndpoints(
				zones.Endpoint{Addresses: []netip.Addr{addr(10, 244, i)}, Ready: true}))
	}
	for i := range s.Headless {
		objs = append(objs, Headless(fmt.Sprintf("ns-%d", i%s.Namespaces), fmt.Sprintf("hl-%d", i), i, s.Endpoints, true)...)
	}
	return objs
}

// Headless returns a headless Service and one slice of n endpoints, all
// ready or all not; seed keeps addresses apart between Services.
func Headless(ns, name string, seed, n int, ready bool) []zones.Object {
	ports := []zones.Port{{Name: "http", Protocol: "tcp", Port: 8080}}
	sl := &zones.EndpointSlice{Namespace: ns, Name: name + "-1", Service: name, Ports: ports}
	eps := make([]zones.Endpoint, 0, n)
	for j := range n {
		eps = append(eps, zones.Endpoint{
			Addresses: []netip.Addr{addr(10, 128+byte(j/65536), seed*n+j)},
			Name:      fmt.Sprintf("%s-%d", name, j),
			Ready:     ready,
		})
	}
	return []zones.Object{
		&zones.Service{Namespace: ns, Name: name, Type: zones.Headless, Ports: ports},
		sl.WithEndpoints(eps...),
	}
}

func addr(a, b byte, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{a, b + byte(i>>16), byte(i >> 8), byte(i)})
}
