package clustergen

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Objects is a synthetic cluster as API objects, for loading into an API
// server or writing as manifests.
type Objects struct {
	Namespaces []*corev1.Namespace
	Services   []*corev1.Service
	Slices     []*discoveryv1.EndpointSlice
}

// APIObjects builds s as API objects: Services ClusterIP Services (ports
// http and grpc), each with one EndpointSlice of Endpoints ready endpoints,
// plus Headless headless Services of Endpoints endpoints with hostnames.
// withIPs sets cluster IPs, which manifests need and an API server assigns.
func APIObjects(s Spec, withIPs bool) Objects {
	var o Objects
	for i := range s.Namespaces {
		o.Namespaces = append(o.Namespaces, &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", i)},
		})
	}
	ports := []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "grpc", Port: 9090, Protocol: corev1.ProtocolTCP}}
	add := func(ns, name string, headless bool, seed int) {
		svc := &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       corev1.ServiceSpec{Ports: ports},
		}
		if headless {
			svc.Spec.ClusterIP = corev1.ClusterIPNone
		} else if withIPs {
			svc.Spec.ClusterIP = addr(10, 96, seed).String()
		}
		ready := true
		sl := &discoveryv1.EndpointSlice{
			TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		for _, p := range ports {
			sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: &p.Name, Port: &p.Port, Protocol: &p.Protocol})
		}
		for j := range s.Endpoints {
			e := discoveryv1.Endpoint{
				Addresses:  []string{endpointAddr(seed, j, s.Endpoints).String()},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			}
			if headless {
				h := fmt.Sprintf("%s-%d", name, j)
				e.Hostname = &h
			}
			sl.Endpoints = append(sl.Endpoints, e)
		}
		o.Services = append(o.Services, svc)
		o.Slices = append(o.Slices, sl)
	}
	for i := range s.Services {
		add(fmt.Sprintf("ns-%d", i%s.Namespaces), fmt.Sprintf("svc-%d", i), false, i)
	}
	for i := range s.Headless {
		add(fmt.Sprintf("ns-%d", i%s.Namespaces), fmt.Sprintf("hl-%d", i), true, s.Services+i)
	}
	return o
}

func endpointAddr(seed, j, per int) netip.Addr {
	n := seed*per + j
	return netip.AddrFrom4([4]byte{10, byte(128 + n>>16), byte(n >> 8), byte(n)})
}

// YAML renders the objects of namespace ns as one multi-document manifest.
func (o Objects) YAML(ns string) ([]byte, error) {
	var out []byte
	emit := func(obj any) error {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		out = append(out, "---\n"...)
		out = append(out, b...)
		return nil
	}
	for _, n := range o.Namespaces {
		if n.Name == ns {
			if err := emit(n); err != nil {
				return nil, err
			}
		}
	}
	for i, s := range o.Services {
		if s.Namespace != ns {
			continue
		}
		if err := emit(s); err != nil {
			return nil, err
		}
		if err := emit(o.Slices[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
