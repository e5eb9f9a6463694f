package main

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMissingIPAddressesAreTheClusterIPsWithoutOne(t *testing.T) {
	svc := func(ns, name string, ips ...string) corev1.Service {
		return corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIPs: ips}}
	}
	svcs := []corev1.Service{
		svc("a", "kept", "10.96.0.10"),
		svc("a", "lost", "10.96.0.11"),
		svc("b", "dual", "10.96.0.12", "fd00:10:96::c"),
		svc("b", "headless", corev1.ClusterIPNone),
	}
	have := map[netip.Addr]bool{netip.MustParseAddr("10.96.0.10"): true, netip.MustParseAddr("10.96.0.12"): true}
	got := missingIPAddresses(svcs, have)
	want := map[string]string{"10.96.0.11": "a/lost/IPv4", "fd00:10:96::c": "b/dual/IPv6"}
	if len(got) != len(want) {
		t.Fatalf("got %d IPAddresses, want %d: %v", len(got), len(want), got)
	}
	for _, ip := range got {
		ref := ip.Spec.ParentRef
		if ref == nil || ref.Resource != "services" {
			t.Fatalf("%s: parent %v, want a Service", ip.Name, ref)
		}
		if g := ref.Namespace + "/" + ref.Name + "/" + ip.Labels["ipaddress.kubernetes.io/ip-family"]; g != want[ip.Name] {
			t.Errorf("%s: %s, want %s", ip.Name, g, want[ip.Name])
		}
		if ip.Labels["ipaddress.kubernetes.io/managed-by"] != "ipallocator.k8s.io" {
			t.Errorf("%s: not marked as the allocator's: %v", ip.Name, ip.Labels)
		}
	}
}
