package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcdisc/svcdisc/config"
)

// serveManifests starts svcdisc on corefile serving the manifests in
// files (name → YAML), and returns its DNS address.
func serveManifests(t *testing.T, corefile string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse("Corefile", strings.NewReader(corefile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	inst, err := start(ctx, cfg, serveFlags{dnsAddr: "127.0.0.1:0", manifests: dir}, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- inst.wait(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return inst.dnsAddr()
}

const optsManifests = `apiVersion: v1
kind: Namespace
metadata:
  name: shown
  labels:
    dns: "on"
---
apiVersion: v1
kind: Namespace
metadata:
  name: hidden
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shown}
spec:
  clusterIP: 10.96.0.10
  externalIPs: [192.0.2.10]
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: hidden}
spec:
  clusterIP: 10.96.0.11
  externalIPs: [192.0.2.11]
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shown}
spec:
  clusterIP: 10.96.0.12
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shown}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.13
  ports: [{name: http, port: 80}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.5}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shown}
spec:
  clusterIP: None
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: shown
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.0.0.1]
  hostname: db-0
  conditions: {ready: true}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shown
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.0.0.2]
  conditions: {ready: true}
`

func TestKubernetesOptionsWithManifests(t *testing.T) {
	addr := serveManifests(t, `. {
    kubernetes cluster.local in-addr.arpa {
        namespace_labels dns=on
        ignore empty_service
        upstream
    }
    k8s_external example.org {
        headless
    }
}
`, map[string]string{"objects.yaml": optsManifests})
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"web.shown.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"web.shown.svc.cluster.local. 0 IN A 10.96.0.10"}},
		{"web.hidden.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"hidden.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"empty.shown.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"db.shown.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"db.shown.svc.cluster.local. 0 IN A 10.0.0.1"}},
		{"web.shown.example.org.", dns.TypeA, dns.RcodeSuccess, []string{"web.shown.example.org. 0 IN A 192.0.2.10"}},
		{"web.hidden.example.org.", dns.TypeA, dns.RcodeNameError, nil},
		{"lb.shown.example.org.", dns.TypeA, dns.RcodeSuccess, []string{"lb.shown.example.org. 0 IN A 203.0.113.5"}},
		{"db-0.db.shown.example.org.", dns.TypeA, dns.RcodeSuccess, []string{"db-0.db.shown.example.org. 0 IN A 10.0.0.1"}},
		{"example.org.", dns.TypeNS, dns.RcodeSuccess, []string{"example.org. 0 IN NS ns1.dns.example.org."}},
	} {
		eventually(t, addr, c.name, c.qtype, c.rcode, c.want...)
	}
}

func TestNoEndpointsWithManifests(t *testing.T) {
	addr := serveManifests(t, ". {\n    kubernetes cluster.local {\n        noendpoints\n    }\n}\n", map[string]string{"objects.yaml": optsManifests})
	eventually(t, addr, "web.shown.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "web.shown.svc.cluster.local. 0 IN A 10.96.0.10")
	eventually(t, addr, "db.shown.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
	eventually(t, addr, "db-0.db.shown.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
}

// Through the API server: namespace_labels follows label changes, and
// k8s_external the Service's external IPs.
func TestKubeNamespaceLabelsAndExternal(t *testing.T) {
	env := needKube(t)
	ctx := context.Background()
	ns := env.namespace(t, "nsl")
	corefile := strings.Replace(kubeCorefile, "pods verified", "namespace_labels svcdisc-test=on\n        noendpoints", 1)
	corefile = strings.Replace(corefile, "    ready 127.0.0.1:0\n", "    ready 127.0.0.1:0\n    k8s_external example.org\n", 1)
	dnsAddr, readyAddr := serveKube(t, corefile, env.kubeconfig)
	waitFor(t, 30*time.Second, "ready", func() bool { return readyStatus(t, readyAddr) == http.StatusOK })
	s := clusterIPService(ns, "web", corev1.ServicePort{Name: "http", Port: 80})
	s.Spec.ExternalIPs = []string{"192.0.2.44"}
	s = must[*corev1.Service](t)(env.client.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}))
	name := "web." + ns + ".svc.cluster.local."
	eventually(t, dnsAddr, name, dns.TypeA, dns.RcodeNameError)
	eventually(t, dnsAddr, "web."+ns+".example.org.", dns.TypeA, dns.RcodeNameError)

	n := must[*corev1.Namespace](t)(env.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}))
	n.Labels = map[string]string{"svcdisc-test": "on"}
	n = must[*corev1.Namespace](t)(env.client.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}))
	eventually(t, dnsAddr, name, dns.TypeA, dns.RcodeSuccess, name+" 0 IN A "+s.Spec.ClusterIP)
	eventually(t, dnsAddr, "web."+ns+".example.org.", dns.TypeA, dns.RcodeSuccess, "web."+ns+".example.org. 0 IN A 192.0.2.44")

	n.Labels = map[string]string{"svcdisc-test": "off"}
	must[*corev1.Namespace](t)(env.client.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}))
	eventually(t, dnsAddr, name, dns.TypeA, dns.RcodeNameError)
}
