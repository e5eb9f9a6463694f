package zones

import (
	"net/netip"
)

// Kind names the kind of a slim object.
type Kind uint8

// The kinds of object a Zone consumes.
const (
	KindService Kind = iota + 1
	KindEndpointSlice
	KindPod
	KindNamespace
)

func (k Kind) String() string {
	switch k {
	case KindService:
		return "Service"
	case KindEndpointSlice:
		return "EndpointSlice"
	case KindPod:
		return "Pod"
	case KindNamespace:
		return "Namespace"
	}
	return "Unknown"
}

// Key identifies an object: its kind, namespace and name.
type Key struct {
	Kind      Kind
	Namespace string
	Name      string
}

func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind.String() + " " + k.Name
	}
	return k.Kind.String() + " " + k.Namespace + "/" + k.Name
}

// Object is one of *Service, *EndpointSlice, *Pod or *Namespace.
type Object interface {
	Key() Key
}

// ServiceType is how a Service is published in DNS.
type ServiceType uint8

// Service types as DNS sees them: NodePort and LoadBalancer Services are
// ClusterIP Services here.
const (
	ClusterIP ServiceType = iota + 1
	Headless
	ExternalName
)

// Port is a named port of a Service or an EndpointSlice.
type Port struct {
	Name     string // empty for an unnamed port
	Protocol string // lower case: "tcp", "udp" or "sctp"
	Port     uint16
}

// Service is the part of a Kubernetes Service that DNS needs.
type Service struct {
	Namespace string
	Name      string
	// ClusterIPs holds the cluster IPs of a ClusterIP Service, in
	// spec.clusterIPs order.
	ClusterIPs []netip.Addr
	Ports      []Port
	Type       ServiceType
	// PublishNotReady publishes every endpoint whatever its conditions say
	// (spec.publishNotReadyAddresses, or the legacy tolerate-unready
	// annotation).
	PublishNotReady bool
	// More holds what few Services have, nil when they have none of it: a
	// large cluster has 100,000 Services, and these fields would make
	// each 80 bytes larger.
	More *ServiceMore
}

// ServiceMore is the part of a Service that few Services have.
type ServiceMore struct {
	// ClusterIPText is spec.clusterIP exactly as written, kept only when it
	// is not the canonical form of ClusterIPs[0]: kubelet's environment
	// variables carry the text, not the address.
	ClusterIPText string
	// ExternalName is the target of an ExternalName Service, lower case and
	// fully qualified.
	ExternalName string
	// ExternalIPs are spec.externalIPs then the IPs of
	// status.loadBalancer.ingress, in that order; ExternalHosts are the
	// ingress hostnames (lower case, fully qualified). Only k8s_external
	// publishes them. Both are nil when empty, as for most Services.
	ExternalIPs   []netip.Addr
	ExternalHosts []string
}

// more returns s.More, made when s has none: for building a Service.
func (s *Service) more() *ServiceMore {
	if s.More == nil {
		s.More = &ServiceMore{}
	}
	return s.More
}

// ClusterIPText returns More.ClusterIPText, "" without More.
func (s *Service) ClusterIPText() string {
	if s.More == nil {
		return ""
	}
	return s.More.ClusterIPText
}

// ExternalName returns More.ExternalName, "" without More.
func (s *Service) ExternalName() string {
	if s.More == nil {
		return ""
	}
	return s.More.ExternalName
}

// ExternalIPs returns More.ExternalIPs, nil without More.
func (s *Service) ExternalIPs() []netip.Addr {
	if s.More == nil {
		return nil
	}
	return s.More.ExternalIPs
}

// ExternalHosts returns More.ExternalHosts, nil without More.
func (s *Service) ExternalHosts() []string {
	if s.More == nil {
		return nil
	}
	return s.More.ExternalHosts
}

// Key implements Object.
func (s *Service) Key() Key { return Key{KindService, s.Namespace, s.Name} }

// EndpointSlice is the part of a discovery.k8s.io/v1 EndpointSlice that DNS
// needs.
type EndpointSlice struct {
	Namespace string
	Name      string
	// Service is the value of the kubernetes.io/service-name label.
	Service string
	Ports   []Port
	// eps are the endpoints, packed: WithEndpoints sets them, Endpoints
	// reads them back.
	eps endpoints
}

// Key implements Object.
func (e *EndpointSlice) Key() Key { return Key{KindEndpointSlice, e.Namespace, e.Name} }

// Endpoint is one endpoint of an EndpointSlice, unpacked: what
// SetEndpoints takes and Endpoints returns. A slice keeps its endpoints
// packed (see endpoints).
type Endpoint struct {
	Addresses []netip.Addr
	// Name is the endpoint's hostname field, lower case, or, when it has
	// none, the name of the Pod behind it (lower case, PodName set), which
	// only endpoint_pod_names uses. One field for both: a large cluster has
	// a million endpoints, and nearly all have neither.
	Name string
	// PodName says Name is the Pod's name, not a hostname.
	PodName bool
	// Ready is the readiness the DNS spec means: the ready condition, with
	// unset counting as ready and terminating as not ready.
	Ready bool
}

// Pod is the part of a Pod that pod records and the client index (autopath)
// need.
type Pod struct {
	Namespace string
	Name      string
	IPs       []netip.Addr
	// HostNetwork is spec.hostNetwork: the Pod shares its node's address,
	// so a query from that address cannot be told apart from the node's.
	HostNetwork bool
	// Running is status.phase Running.
	Running bool
}

// Key implements Object.
func (p *Pod) Key() Key { return Key{KindPod, p.Namespace, p.Name} }

// Namespace is a Namespace: its existence makes <ns>.svc.<zone> exist.
type Namespace struct {
	Name string
	// Labels are the Namespace's labels (nil when it has none), which
	// namespace_labels selects on.
	Labels map[string]string
}

// Key implements Object.
func (n *Namespace) Key() Key { return Key{Kind: KindNamespace, Name: n.Name} }
