package zones

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"unique"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ServiceNameLabel is the EndpointSlice label that names its Service; slices
// without it are not published.
const ServiceNameLabel = discoveryv1.LabelServiceName

// tolerateUnreadyAnnotation is the pre-publishNotReadyAddresses way of asking
// for not-ready endpoints, which the DNS specification still names.
const tolerateUnreadyAnnotation = "service.alpha.kubernetes.io/tolerate-unready-endpoints"

// ErrUnsupported marks an object of a kind a Zone does not consume.
var ErrUnsupported = errors.New("unsupported object")

// FromObject converts a Service, EndpointSlice, Pod or Namespace into its slim
// form. A Pod that has no published address (finished, terminating, or
// without IPs yet) converts to nil without error. Objects DNS cannot publish
// return an error saying why.
func FromObject(obj runtime.Object) (Object, error) {
	// Each case returns a nil interface on error, never a typed nil.
	switch o := obj.(type) {
	case *corev1.Service:
		s, err := FromService(o)
		if err != nil {
			return nil, err
		}
		return s, nil
	case *discoveryv1.EndpointSlice:
		e, err := FromEndpointSlice(o)
		if err != nil {
			return nil, err
		}
		return e, nil
	case *corev1.Pod:
		p, err := FromPod(o)
		if p == nil || err != nil {
			return nil, err
		}
		return p, nil
	case *corev1.Namespace:
		return FromNamespace(o), nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupported, obj)
}

// FromService converts a Service.
func FromService(s *corev1.Service) (*Service, error) {
	out := &Service{
		Namespace: canonical(strings.ToLower(s.Namespace)),
		Name:      strings.ToLower(s.Name),
		PublishNotReady: s.Spec.PublishNotReadyAddresses ||
			s.Annotations[tolerateUnreadyAnnotation] == "true",
	}
	if err := checkLabel("name", out.Name); err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", s.Namespace, s.Name, err)
	}
	switch s.Spec.Type {
	case corev1.ServiceTypeExternalName:
		out.Type = ExternalName
		target := strings.ToLower(dns.Fqdn(s.Spec.ExternalName))
		if _, ok := dns.IsDomainName(target); !ok || s.Spec.ExternalName == "" || target == "." {
			return nil, fmt.Errorf("service %s/%s: externalName %q is not a domain name", s.Namespace, s.Name, s.Spec.ExternalName)
		}
		// CoreDNS ignores an ExternalName that is an IP address: a CNAME to an
		// address literal would point nowhere.
		if _, err := netip.ParseAddr(strings.TrimSuffix(target, ".")); err == nil {
			return nil, fmt.Errorf("service %s/%s: externalName %q is an IP address, not a name", s.Namespace, s.Name, s.Spec.ExternalName)
		}
		out.more().ExternalName = target
	case "", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		if len(ips) > 0 && ips[0] == corev1.ClusterIPNone {
			out.Type = Headless
			break
		}
		out.Type = ClusterIP
		if len(ips) == 0 {
			return nil, fmt.Errorf("service %s/%s: no cluster IP allocated", s.Namespace, s.Name)
		}
		for _, ip := range ips {
			a, err := netip.ParseAddr(ip)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("service %s/%s: bad cluster IP %q", s.Namespace, s.Name, ip)
			}
			out.ClusterIPs = append(out.ClusterIPs, a.Unmap())
		}
		if text := cmp.Or(s.Spec.ClusterIP, ips[0]); text != out.ClusterIPs[0].String() {
			out.more().ClusterIPText = text
		}
	default:
		return nil, fmt.Errorf("service %s/%s: unknown type %q", s.Namespace, s.Name, s.Spec.Type)
	}
	for _, p := range s.Spec.Ports {
		port, err := makePort(p.Name, p.Protocol, p.Port)
		if err != nil {
			return nil, fmt.Errorf("service %s/%s: %w", s.Namespace, s.Name, err)
		}
		out.Ports = append(out.Ports, port)
	}
	out.Ports = canonicalPorts(out.Ports)
	if ips, hosts := externals(s); ips != nil || hosts != nil {
		out.more().ExternalIPs, out.more().ExternalHosts = ips, hosts
	}
	return out, nil
}

// externals reads what k8s_external publishes of s: spec.externalIPs and
// the load balancer's ingress addresses, or its hostnames where it has no
// address. What is not an address or a name is left out, not an error:
// the Service's cluster names do not depend on it.
func externals(s *corev1.Service) (ips []netip.Addr, hosts []string) {
	addIP := func(text string) bool {
		a, err := netip.ParseAddr(text)
		if err != nil || a.Zone() != "" {
			return false
		}
		if a = a.Unmap(); !slices.Contains(ips, a) {
			ips = append(ips, a)
		}
		return true
	}
	for _, ip := range s.Spec.ExternalIPs {
		addIP(ip)
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			addIP(in.IP)
			continue
		}
		h := strings.ToLower(dns.Fqdn(in.Hostname))
		if _, ok := dns.IsDomainName(h); ok && in.Hostname != "" && h != "." && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return slices.Clip(ips), slices.Clip(hosts)
}

// FromEndpointSlice converts an EndpointSlice. Readiness is decided here, once:
// an unset ready condition counts as ready, a terminating endpoint is not ready.
func FromEndpointSlice(e *discoveryv1.EndpointSlice) (*EndpointSlice, error) {
	svc := strings.ToLower(e.Labels[ServiceNameLabel])
	if svc == "" {
		return nil, fmt.Errorf("endpointslice %s/%s: no %s label", e.Namespace, e.Name, ServiceNameLabel)
	}
	var v6 bool
	switch e.AddressType {
	case discoveryv1.AddressTypeIPv4:
	case discoveryv1.AddressTypeIPv6:
		v6 = true
	default:
		return nil, fmt.Errorf("endpointslice %s/%s: unsupported address type %q", e.Namespace, e.Name, e.AddressType)
	}
	out := &EndpointSlice{
		Namespace: canonical(strings.ToLower(e.Namespace)),
		Name:      strings.ToLower(e.Name),
		Service:   svc,
	}
	for _, p := range e.Ports {
		if p.Port == nil {
			continue // "all ports": nothing an SRV record can name
		}
		var name string
		var proto corev1.Protocol
		if p.Name != nil {
			name = *p.Name
		}
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		port, err := makePort(name, proto, *p.Port)
		if err != nil {
			return nil, fmt.Errorf("endpointslice %s/%s: %w", e.Namespace, e.Name, err)
		}
		out.Ports = append(out.Ports, port)
	}
	out.Ports = canonicalPorts(out.Ports)
	// Packed as read: a large cluster holds a million endpoints.
	var b endpointsBuilder
	b.addrs.v6 = v6
	b.addrs.b = make([]byte, 0, len(e.Endpoints)*b.addrs.width())
	for i, ep := range e.Endpoints {
		for _, a := range ep.Addresses {
			addr, err := netip.ParseAddr(a)
			if err != nil || addr.Zone() != "" {
				return nil, fmt.Errorf("endpointslice %s/%s: endpoint %d: bad address %q", e.Namespace, e.Name, i, a)
			}
			addr = addr.Unmap()
			if addr.Is6() != v6 {
				return nil, fmt.Errorf("endpointslice %s/%s: endpoint %d: address %q is not %s", e.Namespace, e.Name, i, a, e.AddressType)
			}
			b.addr(addr)
		}
		var name string
		var podName bool
		if ep.Hostname != nil && *ep.Hostname != "" {
			name = strings.ToLower(*ep.Hostname)
			if err := checkLabel("hostname", name); err != nil {
				return nil, fmt.Errorf("endpointslice %s/%s: endpoint %d: %w", e.Namespace, e.Name, i, err)
			}
		} else if ep.TargetRef != nil && (ep.TargetRef.Kind == "" || ep.TargetRef.Kind == "Pod") && ep.TargetRef.Name != "" {
			name, podName = strings.ToLower(ep.TargetRef.Name), true
		}
		c := ep.Conditions
		b.end(name, podName, (c.Ready == nil || *c.Ready) && (c.Terminating == nil || !*c.Terminating))
	}
	out.eps = b.done()
	return out, nil
}

// FromPod converts a Pod. It returns nil for a Pod that has no address to
// publish: finished, being deleted, or not yet given an IP.
func FromPod(p *corev1.Pod) (*Pod, error) {
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil, nil
	}
	out := &Pod{Namespace: canonical(strings.ToLower(p.Namespace)), Name: strings.ToLower(p.Name),
		HostNetwork: p.Spec.HostNetwork, Running: p.Status.Phase == corev1.PodRunning}
	ips := make([]string, 0, len(p.Status.PodIPs)+1)
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = append(ips, p.Status.PodIP)
	}
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("pod %s/%s: bad pod IP %q", p.Namespace, p.Name, ip)
		}
		out.IPs = append(out.IPs, a.Unmap())
	}
	if len(out.IPs) == 0 {
		return nil, nil
	}
	return out, nil
}

// FromNamespace converts a Namespace.
func FromNamespace(n *corev1.Namespace) *Namespace {
	out := &Namespace{Name: strings.ToLower(n.Name)}
	if len(n.Labels) > 0 {
		out.Labels = maps.Clone(n.Labels)
	}
	return out
}

func makePort(name string, proto corev1.Protocol, port int32) (Port, error) {
	if port < 1 || port > 65535 {
		return Port{}, fmt.Errorf("port %q: number %d out of range", name, port)
	}
	p := Port{Name: canonical(strings.ToLower(name)), Port: uint16(port)}
	switch proto {
	case "", corev1.ProtocolTCP:
		p.Protocol = "tcp"
	case corev1.ProtocolUDP:
		p.Protocol = "udp"
	case corev1.ProtocolSCTP:
		p.Protocol = "sctp"
	default:
		return Port{}, fmt.Errorf("port %q: unknown protocol %q", name, proto)
	}
	if p.Name != "" {
		if err := checkLabel("port name", p.Name); err != nil {
			return Port{}, err
		}
	}
	return p, nil
}

// canonical returns the one copy of s shared by every object that has it.
// For the few, often repeated strings of a cluster: namespaces and port
// names. Each decoded API object carries its own copies, which the slim
// objects would otherwise keep, one per object and port.
func canonical(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// checkLabel rejects what cannot be one DNS label: it would change the shape
// of every name built from it.
func checkLabel(what, s string) error {
	if s == "" || len(s) > 63 || strings.ContainsAny(s, ". \\\t\n") {
		return fmt.Errorf("%s %q is not a DNS label", what, s)
	}
	return nil
}
