package envgen

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcdisc/svcdisc/zones"
)

func svc(ns, name string, ips []string, ports ...corev1.ServicePort) corev1.Service {
	s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if len(ips) > 0 {
		s.Spec.ClusterIP = ips[0]
		s.Spec.ClusterIPs = ips
	}
	s.Spec.Ports = ports
	return s
}

func port(name string, proto corev1.Protocol, n int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: n}
}

func slimService(t testing.TB, s corev1.Service) *zones.Service {
	t.Helper()
	out, err := zones.FromService(&s)
	if err != nil {
		t.Fatalf("convert %s/%s: %v", s.Namespace, s.Name, err)
	}
	return out
}

func TestServiceVarsMatchKubelet(t *testing.T) {
	headless := svc("shop", "db", []string{"None"}, port("", "", 5432))
	external := svc("shop", "ext", nil, port("", "", 80))
	external.Spec.Type = corev1.ServiceTypeExternalName
	external.Spec.ExternalName = "example.com"
	tests := []struct {
		name string
		svc  corev1.Service
		want []Var
	}{
		{
			name: "one unnamed TCP port with the protocol left out",
			svc:  svc("shop", "web", []string{"10.96.0.10"}, port("", "", 80)),
			want: []Var{
				{"WEB_SERVICE_HOST", "10.96.0.10"},
				{"WEB_SERVICE_PORT", "80"},
				{"WEB_PORT", "tcp://10.96.0.10:80"},
				{"WEB_PORT_80_TCP", "tcp://10.96.0.10:80"},
				{"WEB_PORT_80_TCP_PROTO", "tcp"},
				{"WEB_PORT_80_TCP_PORT", "80"},
				{"WEB_PORT_80_TCP_ADDR", "10.96.0.10"},
			},
		},
		{
			name: "dashes become underscores and named ports get their own variable, in port order",
			svc: svc("shop", "my-api", []string{"10.96.1.2"},
				port("http-alt", corev1.ProtocolTCP, 8080), port("dns", corev1.ProtocolUDP, 53), port("sig", corev1.ProtocolSCTP, 9000)),
			want: []Var{
				{"MY_API_SERVICE_HOST", "10.96.1.2"},
				{"MY_API_SERVICE_PORT", "8080"},
				{"MY_API_SERVICE_PORT_HTTP_ALT", "8080"},
				{"MY_API_SERVICE_PORT_DNS", "53"},
				{"MY_API_SERVICE_PORT_SIG", "9000"},
				{"MY_API_PORT", "tcp://10.96.1.2:8080"},
				{"MY_API_PORT_8080_TCP", "tcp://10.96.1.2:8080"},
				{"MY_API_PORT_8080_TCP_PROTO", "tcp"},
				{"MY_API_PORT_8080_TCP_PORT", "8080"},
				{"MY_API_PORT_8080_TCP_ADDR", "10.96.1.2"},
				{"MY_API_PORT_53_UDP", "udp://10.96.1.2:53"},
				{"MY_API_PORT_53_UDP_PROTO", "udp"},
				{"MY_API_PORT_53_UDP_PORT", "53"},
				{"MY_API_PORT_53_UDP_ADDR", "10.96.1.2"},
				{"MY_API_PORT_9000_SCTP", "sctp://10.96.1.2:9000"},
				{"MY_API_PORT_9000_SCTP_PROTO", "sctp"},
				{"MY_API_PORT_9000_SCTP_PORT", "9000"},
				{"MY_API_PORT_9000_SCTP_ADDR", "10.96.1.2"},
			},
		},
		{
			name: "the first port is the service port even when a later one is named",
			svc:  svc("shop", "mixed", []string{"10.96.1.3"}, port("", "", 81), port("b", corev1.ProtocolUDP, 82)),
			want: []Var{
				{"MIXED_SERVICE_HOST", "10.96.1.3"},
				{"MIXED_SERVICE_PORT", "81"},
				{"MIXED_SERVICE_PORT_B", "82"},
				{"MIXED_PORT", "tcp://10.96.1.3:81"},
				{"MIXED_PORT_81_TCP", "tcp://10.96.1.3:81"},
				{"MIXED_PORT_81_TCP_PROTO", "tcp"},
				{"MIXED_PORT_81_TCP_PORT", "81"},
				{"MIXED_PORT_81_TCP_ADDR", "10.96.1.3"},
				{"MIXED_PORT_82_UDP", "udp://10.96.1.3:82"},
				{"MIXED_PORT_82_UDP_PROTO", "udp"},
				{"MIXED_PORT_82_UDP_PORT", "82"},
				{"MIXED_PORT_82_UDP_ADDR", "10.96.1.3"},
			},
		},
		{
			name: "a port name starting with a digit is kept as is, as kubelet does",
			svc:  svc("shop", "x", []string{"10.0.0.1"}, port("8080-tcp", "", 8080)),
			want: []Var{
				{"X_SERVICE_HOST", "10.0.0.1"},
				{"X_SERVICE_PORT", "8080"},
				{"X_SERVICE_PORT_8080_TCP", "8080"},
				{"X_PORT", "tcp://10.0.0.1:8080"},
				{"X_PORT_8080_TCP", "tcp://10.0.0.1:8080"},
				{"X_PORT_8080_TCP_PROTO", "tcp"},
				{"X_PORT_8080_TCP_PORT", "8080"},
				{"X_PORT_8080_TCP_ADDR", "10.0.0.1"},
			},
		},
		{
			name: "IPv6 cluster IP is bracketed in URLs only",
			svc:  svc("shop", "v6", []string{"fd00:10:96::a"}, port("", "", 443)),
			want: []Var{
				{"V6_SERVICE_HOST", "fd00:10:96::a"},
				{"V6_SERVICE_PORT", "443"},
				{"V6_PORT", "tcp://[fd00:10:96::a]:443"},
				{"V6_PORT_443_TCP", "tcp://[fd00:10:96::a]:443"},
				{"V6_PORT_443_TCP_PROTO", "tcp"},
				{"V6_PORT_443_TCP_PORT", "443"},
				{"V6_PORT_443_TCP_ADDR", "fd00:10:96::a"},
			},
		},
		{
			name: "dual-stack uses the primary family's IP only",
			svc:  svc("shop", "ds", []string{"fd00:10:96::b", "10.96.0.11"}, port("", "", 80)),
			want: []Var{
				{"DS_SERVICE_HOST", "fd00:10:96::b"},
				{"DS_SERVICE_PORT", "80"},
				{"DS_PORT", "tcp://[fd00:10:96::b]:80"},
				{"DS_PORT_80_TCP", "tcp://[fd00:10:96::b]:80"},
				{"DS_PORT_80_TCP_PROTO", "tcp"},
				{"DS_PORT_80_TCP_PORT", "80"},
				{"DS_PORT_80_TCP_ADDR", "fd00:10:96::b"},
			},
		},
		{
			name: "a cluster IP is reproduced as written, not canonicalised",
			svc:  svc("shop", "odd", []string{"FD00:10:96:0::c"}, port("", "", 80)),
			want: []Var{
				{"ODD_SERVICE_HOST", "FD00:10:96:0::c"},
				{"ODD_SERVICE_PORT", "80"},
				{"ODD_PORT", "tcp://[FD00:10:96:0::c]:80"},
				{"ODD_PORT_80_TCP", "tcp://[FD00:10:96:0::c]:80"},
				{"ODD_PORT_80_TCP_PROTO", "tcp"},
				{"ODD_PORT_80_TCP_PORT", "80"},
				{"ODD_PORT_80_TCP_ADDR", "FD00:10:96:0::c"},
			},
		},
		{name: "headless has none", svc: headless},
		{name: "ExternalName has none", svc: external},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ServiceVars(slimService(t, tt.svc))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%v\nwant\n%v", got, tt.want)
			}
			// The independent kubelet model agrees value by value.
			s := tt.svc
			want := kubeletServiceEnv([]corev1.Service{s}, s.Namespace, true)
			if len(want) != len(got) {
				t.Errorf("kubelet model has %d variables, we have %d", len(want), len(got))
			}
			for _, v := range got {
				if want[v.Name] != v.Value {
					t.Errorf("%s = %q, kubelet model says %q", v.Name, v.Value, want[v.Name])
				}
			}
		})
	}
}

func names(s *Set) []string {
	var out []string
	for _, g := range s.Groups {
		out = append(out, g.Namespace+"/"+g.Service)
	}
	return out
}

func TestStoreEnvPicksKubeletsServices(t *testing.T) {
	master := svc("default", "kubernetes", []string{"10.96.0.1"}, port("https", "", 443))
	localKube := svc("shop", "kubernetes", []string{"10.96.5.5"}, port("", "", 8443))
	web := svc("shop", "web", []string{"10.96.0.20"}, port("http", "", 80))
	other := svc("other", "db", []string{"10.96.0.30"}, port("", "", 5432))
	headless := svc("shop", "hl", []string{"None"}, port("", "", 80))
	defaultWeb := svc("default", "web", []string{"10.96.0.40"}, port("", "", 80))
	all := []corev1.Service{master, localKube, web, other, headless, defaultWeb}

	tests := []struct {
		name  string
		ns    string
		links bool
		want  []string
	}{
		{"links on: the namespace's services with a cluster IP, the local kubernetes winning", "shop", true, []string{"shop/kubernetes", "shop/web"}},
		{"links off: only the master service", "shop", false, []string{"default/kubernetes"}},
		{"a namespace with no services still gets the master", "empty", true, []string{"default/kubernetes"}},
		{"default namespace with links on", "default", true, []string{"default/kubernetes", "default/web"}},
		{"default namespace with links off", "default", false, []string{"default/kubernetes"}},
	}
	s := NewStore()
	for _, sv := range all {
		s.Update(slimService(t, sv))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := s.Env(tt.ns, tt.links)
			if got := names(set); !slices.Equal(got, tt.want) {
				t.Fatalf("services %v, want %v", got, tt.want)
			}
			want := kubeletServiceEnv(all, tt.ns, tt.links)
			if got := set.Map(); !mapsEqual(got, want) {
				t.Errorf("variables differ from kubelet's:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestStoreEnvFollowsChanges(t *testing.T) {
	s := NewStore()
	s.Update(slimService(t, svc("shop", "web", []string{"10.96.0.20"}, port("", "", 80))))
	if got := s.Env("shop", true).Map()["WEB_SERVICE_HOST"]; got != "10.96.0.20" {
		t.Fatalf("WEB_SERVICE_HOST = %q", got)
	}
	s.Update(slimService(t, svc("shop", "web", []string{"10.96.0.21"}, port("", "", 80))))
	if got := s.Env("shop", true).Map()["WEB_SERVICE_HOST"]; got != "10.96.0.21" {
		t.Fatalf("after update WEB_SERVICE_HOST = %q, want the new IP", got)
	}
	s.Update(slimService(t, svc("default", "kubernetes", []string{"10.96.0.1"}, port("https", "", 443))))
	if got := s.Env("shop", true).Map()["KUBERNETES_SERVICE_HOST"]; got != "10.96.0.1" {
		t.Fatalf("a change in default/kubernetes is not seen by other namespaces: %q", got)
	}
	s.Delete(zones.Key{Kind: zones.KindService, Namespace: "shop", Name: "web"})
	if _, ok := s.Env("shop", true).Map()["WEB_SERVICE_HOST"]; ok {
		t.Fatal("deleted service still has variables")
	}
	s.Replace([]zones.Object{slimService(t, svc("shop", "api", []string{"10.96.0.50"}, port("", "", 80)))})
	m := s.Env("shop", true).Map()
	if m["API_SERVICE_HOST"] != "10.96.0.50" || m["KUBERNETES_SERVICE_HOST"] != "" {
		t.Fatalf("after Replace: %v", m)
	}
}

func TestSetKeepsOneValuePerName(t *testing.T) {
	// "a" with a port named "b-service-host" and a Service "a-service-port-b"
	// both produce A_SERVICE_PORT_B_SERVICE_HOST.
	s := NewStore()
	s.Update(slimService(t, svc("ns", "a", []string{"10.0.0.1"}, port("", "", 1), port("b-service-host", "", 2))))
	s.Update(slimService(t, svc("ns", "a-service-port-b", []string{"10.0.0.2"}, port("", "", 3))))
	set := s.Env("ns", true)
	seen := map[string]int{}
	for _, v := range set.Vars() {
		seen[v.Name]++
	}
	for n, c := range seen {
		if c > 1 {
			t.Errorf("%s appears %d times", n, c)
		}
	}
	if got := set.Map()["A_SERVICE_PORT_B_SERVICE_HOST"]; got != "10.0.0.2" {
		t.Errorf("A_SERVICE_PORT_B_SERVICE_HOST = %q, want the later service's", got)
	}
	if set.Len() != len(seen) {
		t.Errorf("Len %d, distinct names %d", set.Len(), len(seen))
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
