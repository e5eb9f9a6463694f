package zones

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func clusterIP(ns, name, ip string) *Service {
	return &Service{Namespace: ns, Name: name, Type: ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr(ip)},
		Ports: []Port{{Name: "http", Protocol: "tcp", Port: 80}}}
}

func TestNoEndpointsDropsEndpointSlices(t *testing.T) {
	o := testOptions()
	o.NoEndpoints = true
	z := New(o)
	z.Replace([]Object{headless("ns", "db"), slice("ns", "db-1", "db", true, "10.0.0.1"),
		clusterIP("ns", "web", "10.96.0.1"), slice("ns", "web-1", "web", true, "10.0.0.2")})
	for _, gone := range []string{"db.ns.svc.cluster.local.", "10-0-0-2.web.ns.svc.cluster.local.", "2.0.0.10.in-addr.arpa."} {
		if n := z.Lookup(gone); n != nil {
			t.Errorf("%s exists with noendpoints: %+v", gone, n)
		}
	}
	if got := addrs(z.Lookup("web.ns.svc.cluster.local."), dns.TypeA); len(got) != 1 || got[0] != "10.96.0.1" {
		t.Errorf("ClusterIP Service with noendpoints: A = %v, want [10.96.0.1]", got)
	}
}

func TestIgnoreEmptyServiceHidesClusterIPServicesWithoutReadyEndpoints(t *testing.T) {
	o := testOptions()
	o.IgnoreEmptyService = true
	z := New(o)
	z.Replace([]Object{clusterIP("ns", "web", "10.96.0.1"), slice("ns", "web-1", "web", false, "10.0.0.2"),
		&Service{Namespace: "ns", Name: "ext", Type: ExternalName, More: &ServiceMore{ExternalName: "example.org."}}})
	for _, gone := range []string{"web.ns.svc.cluster.local.", "_http._tcp.web.ns.svc.cluster.local."} {
		if n := z.Lookup(gone); n != nil {
			t.Errorf("%s exists without a ready endpoint: %+v", gone, n)
		}
	}
	if got := addrs(z.Lookup("1.0.96.10.in-addr.arpa."), dns.TypePTR); len(got) != 1 {
		t.Errorf("PTR of the cluster IP = %v, want it kept (as CoreDNS)", got)
	}
	if n := z.Lookup("ext.ns.svc.cluster.local."); n == nil || n.Get(dns.TypeCNAME) == nil {
		t.Errorf("ExternalName Service hidden by ignore empty_service")
	}
	if n := z.Lookup("ns.svc.cluster.local."); n == nil {
		t.Errorf("the namespace vanished with its empty Service")
	}
	z.Update(slice("ns", "web-1", "web", true, "10.0.0.2"))
	if got := addrs(z.Lookup("web.ns.svc.cluster.local."), dns.TypeA); len(got) != 1 || got[0] != "10.96.0.1" {
		t.Errorf("after an endpoint became ready: A = %v, want [10.96.0.1]", got)
	}
	z.Delete(Key{KindEndpointSlice, "ns", "web-1"})
	if n := z.Lookup("web.ns.svc.cluster.local."); n != nil {
		t.Errorf("Service still answers after its endpoints went")
	}
}

func TestNamespaceLabelsPublishOnlySelectedNamespaces(t *testing.T) {
	o := testOptions()
	o.Pods = PodsVerified
	o.NamespaceLabels = labels.SelectorFromSet(labels.Set{"dns": "on"})
	z := New(o)
	pod := &Pod{Namespace: "b", Name: "p", IPs: []netip.Addr{netip.MustParseAddr("10.1.0.1")}}
	z.Replace([]Object{
		&Namespace{Name: "a", Labels: map[string]string{"dns": "on"}},
		&Namespace{Name: "b"},
		clusterIP("a", "web", "10.96.0.1"), clusterIP("b", "web", "10.96.0.2"), clusterIP("c", "web", "10.96.0.3"), pod,
	})
	if n := z.Lookup("web.a.svc.cluster.local."); n == nil {
		t.Errorf("Service in a selected namespace not published")
	}
	for _, gone := range []string{"web.b.svc.cluster.local.", "b.svc.cluster.local.", "web.c.svc.cluster.local.",
		"2.0.96.10.in-addr.arpa.", "10-1-0-1.b.pod.cluster.local."} {
		if n := z.Lookup(gone); n != nil {
			t.Errorf("%s exists though its namespace is not selected", gone)
		}
	}
	// b gets the label: its objects appear; a loses it: they go.
	z.Update(&Namespace{Name: "b", Labels: map[string]string{"dns": "on"}})
	z.Update(&Namespace{Name: "a", Labels: map[string]string{"dns": "off"}})
	for _, now := range []string{"web.b.svc.cluster.local.", "2.0.96.10.in-addr.arpa.", "10-1-0-1.b.pod.cluster.local."} {
		if n := z.Lookup(now); n == nil {
			t.Errorf("%s missing after its namespace was labelled", now)
		}
	}
	if n := z.Lookup("web.a.svc.cluster.local."); n != nil {
		t.Errorf("Service still published after its namespace lost the label")
	}
	z.Delete(Key{Kind: KindNamespace, Name: "b"})
	if n := z.Lookup("web.b.svc.cluster.local."); n != nil {
		t.Errorf("Service still published after its Namespace was deleted")
	}
}

func TestServiceKeepsExternalAddresses(t *testing.T) {
	s, err := FromService(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: "ns"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.1", ExternalIPs: []string{"192.0.2.1", "bogus", "192.0.2.1"}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
			{IP: "2001:db8::1"}, {Hostname: "LB.Example.COM"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	if ips := s.ExternalIPs(); len(ips) != 2 || ips[0] != want[0] || ips[1] != want[1] {
		t.Errorf("ExternalIPs = %v, want %v", ips, want)
	}
	if hosts := s.ExternalHosts(); len(hosts) != 1 || hosts[0] != "lb.example.com." {
		t.Errorf("ExternalHosts = %v, want [lb.example.com.]", hosts)
	}
	plain, _ := FromService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.2"}})
	if plain.More != nil {
		t.Errorf("a Service without externals holds %+v, want no More", plain.More)
	}
}

func TestExternalLookups(t *testing.T) {
	z := New(testOptions())
	lb := clusterIP("ns", "lb", "10.96.0.1")
	lb.More = &ServiceMore{ExternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	z.Replace([]Object{lb, headless("ns", "db"), slice("ns", "db-1", "db", true, "10.0.0.1")})
	if v, ok := z.External("ns", "lb"); !ok || v.Service.ExternalIPs()[0] != lb.ExternalIPs()[0] {
		t.Errorf("External(ns, lb) = %+v, %v", v, ok)
	}
	if v, ok := z.External("ns", "db"); !ok || len(v.Endpoints) != 1 || v.Endpoints[0].Label != "10-0-0-1" || len(v.Ports) != 1 {
		t.Errorf("External(ns, db) = %+v, %v", v, ok)
	}
	if refs := z.ExternalByAddr(netip.MustParseAddr("192.0.2.1")); len(refs) != 1 || refs[0] != (ServiceRef{"ns", "lb"}) {
		t.Errorf("ExternalByAddr = %v", refs)
	}
	z.Delete(lb.Key())
	if refs := z.ExternalByAddr(netip.MustParseAddr("192.0.2.1")); len(refs) != 0 {
		t.Errorf("ExternalByAddr after delete = %v", refs)
	}
	if !z.NamespaceExists("ns") || z.NamespaceExists("nope") {
		t.Errorf("NamespaceExists wrong")
	}
}
