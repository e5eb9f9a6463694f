package zones

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// What k8s_external needs from the zone: a Service's external addresses
// and published endpoints, the Services of an external address, and the
// name server's external addresses. Lookups read the published views, so
// they never wait for an update, and see what the cluster zone publishes
// (namespaces, namespace_labels, noendpoints) with one exception, as in
// CoreDNS: ignore empty_service does not hide a Service from k8s_external.

// ServiceRef names a Service.
type ServiceRef struct {
	Namespace, Name string
}

// PublishedEndpoint is one published endpoint address of a Service and
// the label of its name (hostname, Pod name or dashed address).
type PublishedEndpoint struct {
	Label string
	Addr  netip.Addr
}

// EndpointPort is one port of the endpoint whose name has Label.
type EndpointPort struct {
	Label string
	Port  Port
}

// ExternalView is a Service as k8s_external sees it. It shares what the
// zone holds: read it, never change it.
type ExternalView struct {
	Service *Service
	// Endpoints are the published endpoints, ordered by label then
	// address; Ports the ports of each endpoint label, from the
	// EndpointSlices that hold it.
	Endpoints []PublishedEndpoint
	Ports     []EndpointPort
}

// External returns the Service ns/name (lower case) as published, and
// false when the zone publishes no such Service.
func (z *Zone) External(ns, name string) (ExternalView, bool) {
	v := z.vi.view(nsName{ns, name})
	if v == nil {
		return ExternalView{}, false
	}
	ev := ExternalView{Service: v.svc}
	if v.len() > 0 {
		ev.Endpoints = make([]PublishedEndpoint, v.len())
		for i := range ev.Endpoints {
			ev.Endpoints[i] = PublishedEndpoint{Label: v.label(i), Addr: v.addr(i)}
		}
	}
	for port, ep := range v.srvPairs() {
		ev.Ports = append(ev.Ports, EndpointPort{Label: ev.Endpoints[ep].Label, Port: port})
	}
	return ev, true
}

// ExternalByAddr returns the published Services that have a as an
// external address, ordered by namespace and name.
func (z *Zone) ExternalByAddr(a netip.Addr) []ServiceRef {
	z.vi.extMu.RLock()
	keys := z.vi.ext[a.Unmap()]
	z.vi.extMu.RUnlock()
	var out []ServiceRef
	for _, k := range keys {
		out = append(out, ServiceRef{Namespace: k.ns, Name: k.name})
	}
	return out
}

// NamespaceExists reports whether namespace ns (lower case) exists in the
// zone: its Namespace object, or a published Service in it, and published
// (namespaces, namespace_labels).
func (z *Zone) NamespaceExists(ns string) bool {
	if len(z.fwd) == 0 || ns == "" || strings.Contains(ns, ".") {
		return false
	}
	return z.namespaceExists(ns, z.fwd[0])
}

// ExternalNSAddrs returns the external addresses of the name server: those
// of the kube-system/kube-dns Service when the zone publishes it (possibly
// none), else the addresses the zone was given for ns.dns.
func (z *Zone) ExternalNSAddrs() []netip.Addr {
	if v := z.vi.view(nsName{"kube-system", "kube-dns"}); v != nil {
		return v.svc.ExternalIPs()
	}
	return z.opts.NSAddrs
}

// Serial returns the serial of the zone's SOA: it moves with every change.
func (z *Zone) Serial() uint32 {
	if soa, ok := z.SOA(z.primary).(*dns.SOA); ok {
		return soa.Serial
	}
	return 0
}

// ParseReverse returns the address a full-length reverse name (lower case,
// fully qualified, in in-addr.arpa. or ip6.arpa.) spells.
func ParseReverse(name string) (netip.Addr, bool) { return parseReverse(name) }
