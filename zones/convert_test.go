package zones

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A Service keeps what few Services have (an ExternalName target, a
// cluster IP spelt unusually, external addresses) behind one pointer,
// made only when it has some: most Services are plain ClusterIP ones.
func TestServiceKeepsItsRareFieldsApart(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "ns", Name: "web"}
	for _, tc := range []struct {
		name string
		spec corev1.ServiceSpec
		lb   []corev1.LoadBalancerIngress
		want *ServiceMore
	}{
		{name: "plain ClusterIP", spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1"}},
		{name: "headless", spec: corev1.ServiceSpec{ClusterIP: "None"}},
		{
			name: "ExternalName", spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "Example.COM"},
			want: &ServiceMore{ExternalName: "example.com."},
		},
		{
			name: "cluster IP spelt unusually", spec: corev1.ServiceSpec{ClusterIP: "fd00:0:0::1"},
			want: &ServiceMore{ClusterIPText: "fd00:0:0::1"},
		},
		{
			name: "load balancer", spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Type: corev1.ServiceTypeLoadBalancer},
			lb:   []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}, {Hostname: "LB.example.net"}},
			want: &ServiceMore{ExternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, ExternalHosts: []string{"lb.example.net."}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := FromService(&corev1.Service{ObjectMeta: meta, Spec: tc.spec,
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: tc.lb}}})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.More, tc.want) {
				t.Errorf("More = %+v, want %+v", s.More, tc.want)
			}
			var want ServiceMore
			if tc.want != nil {
				want = *tc.want
			}
			if s.ExternalName() != want.ExternalName || s.ClusterIPText() != want.ClusterIPText ||
				!slices.Equal(s.ExternalIPs(), want.ExternalIPs) || !slices.Equal(s.ExternalHosts(), want.ExternalHosts) {
				t.Errorf("accessors read %q %q %v %v, want %+v", s.ExternalName(), s.ClusterIPText(), s.ExternalIPs(), s.ExternalHosts(), want)
			}
		})
	}
	// The point of it: a Service is a 96-byte allocation, not 176.
	if n := unsafe.Sizeof(Service{}); n > 96 {
		t.Errorf("a Service is %d bytes, want at most 96", n)
	}
}
