package main

import (
	"context"
	"fmt"
	"math/rand/v2"

	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runningPodAt creates a Pod in ns and gives it, through the status
// subresource as a kubelet would, phase Running and the address ip.
func runningPodAt(t *testing.T, env *kubeEnv, ns, name, ip string, hostNetwork bool) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pods := env.client.CoreV1().Pods(ns)
	p := must[*corev1.Pod](t)(pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "node-1", HostNetwork: hostNetwork, Containers: []corev1.Container{{Name: "c", Image: "example.com/c"}}}},
		metav1.CreateOptions{}))
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	p = must[*corev1.Pod](t)(pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}))
	t.Cleanup(func() {
		// No kubelet confirms a graceful delete: gone at once, so a later
		// run's Pods do not share this one's address.
		_ = pods.Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	})
	return p
}

// TestKubeAutopathReplicasGiveTheSameAnswer: two replicas watching the same
// API server answer every query of every client alike (issue 14: no
// replica-local state may complete a query on one and not the other), and
// each answer is the one the client's own search-path walk would reach.
func TestKubeAutopathReplicasGiveTheSameAnswer(t *testing.T) {
	env := needKube(t)
	ctx := context.Background()
	shop, bank := env.namespace(t, "shop"), env.namespace(t, "bank")
	web := must[*corev1.Service](t)(env.client.CoreV1().Services(shop).Create(ctx,
		clusterIPService(shop, "web", corev1.ServicePort{Name: "http", Port: 80}), metav1.CreateOptions{}))
	// Client addresses, in a loopback /24 of this run's own: a shop Pod, a bank Pod, an address a shop Pod and a
	// bank Pod both claim (an IP reused before the old Pod went), a
	// hostNetwork Pod, and an address that is no Pod's.
	lo := fmt.Sprintf("127.%d.%d.", 1+rand.IntN(250), 1+rand.IntN(250))
	runningPodAt(t, env, shop, "cart", lo+"21", false)
	runningPodAt(t, env, bank, "ledger", lo+"22", false)
	runningPodAt(t, env, shop, "old", lo+"23", false)
	runningPodAt(t, env, bank, "new", lo+"23", false)
	runningPodAt(t, env, bank, "agent", lo+"24", true)

	up := startUpstream(t)
	corefile := strings.ReplaceAll(`. {
    ready 127.0.0.1:0
    autopath @kubernetes
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods verified
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    forward . UPSTREAM
}
`, "UPSTREAM", up.addr)
	old := hostResolvConf
	hostResolvConf = "testdata/autopath/no-such-resolv.conf"
	t.Cleanup(func() { hostResolvConf = old })
	var replicas []string
	for range 2 {
		dnsAddr, readyAddr := serveKube(t, corefile, env.kubeconfig)
		waitFor(t, 30*time.Second, "ready", func() bool { return readyStatus(t, readyAddr) == 200 })
		replicas = append(replicas, dnsAddr)
	}
	// Both have seen every Pod once the shop client is completed by both.
	ext := "api.github.com." + shop + ".svc.cluster.local."
	for _, r := range replicas {
		waitFor(t, 30*time.Second, "the Pods", func() bool {
			return strings.Contains(answers(queryFrom(t, lo+"21", r, ext, dns.TypeA)), "CNAME")
		})
	}

	webA := "web." + shop + ".svc.cluster.local. 5 IN A " + web.Spec.ClusterIP
	completed := func(asked, found string, rrs ...string) string {
		return "NOERROR " + strings.Join(append([]string{asked + " " + rrs[0] + " IN CNAME " + found}, rrs[1:]...), " | ")
	}
	tests := []struct {
		name, client, qname string
		qtype               uint16
		want                string
	}{
		{"a shop Pod, an external name", lo + "21", ext, dns.TypeA,
			completed(ext, "api.github.com.", "300", "api.github.com. 300 IN A 192.0.2.1")},
		{"a shop Pod, the same name for AAAA", lo + "21", ext, dns.TypeAAAA,
			"NOERROR " + ext + " 5 IN CNAME api.github.com."},
		{"a shop Pod, web.shop", lo + "21", "web." + shop + "." + shop + ".svc.cluster.local.", dns.TypeA,
			completed("web."+shop+"."+shop+".svc.cluster.local.", "web."+shop+".svc.cluster.local.", "5", webA)},
		{"a bank Pod asking shop's search domain", lo + "22", ext, dns.TypeA, "NXDOMAIN "},
		{"a bank Pod, its own search domain", lo + "22", "api.github.com." + bank + ".svc.cluster.local.", dns.TypeA,
			completed("api.github.com."+bank+".svc.cluster.local.", "api.github.com.", "300", "api.github.com. 300 IN A 192.0.2.1")},
		{"an address two Pods claim", lo + "23", ext, dns.TypeA, "NXDOMAIN "},
		{"an address two Pods claim, bank's domain", lo + "23", "api.github.com." + bank + ".svc.cluster.local.", dns.TypeA, "NXDOMAIN "},
		{"a hostNetwork Pod", lo + "24", "api.github.com." + bank + ".svc.cluster.local.", dns.TypeA, "NXDOMAIN "},
		{"an address that is no Pod's", lo + "25", ext, dns.TypeA, "NXDOMAIN "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for range 3 { // repeats: whatever a replica keeps must not change it
				for _, r := range replicas {
					got = append(got, answers(queryFrom(t, tt.client, r, tt.qname, tt.qtype)))
				}
			}
			for i, g := range got {
				if g != tt.want {
					t.Errorf("replica %d, round %d: %s\nwant %s", i%2, i/2, g, tt.want)
				}
			}
		})
	}

	// The shop Pod moves to another address: both replicas follow the
	// watch, and neither completes the old address any more.
	if err := env.client.CoreV1().Pods(shop).Delete(ctx, "cart", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	runningPodAt(t, env, shop, "cart-2", lo+"26", false)
	for _, r := range replicas {
		waitFor(t, 30*time.Second, "the move", func() bool {
			return strings.Contains(answers(queryFrom(t, lo+"26", r, ext, dns.TypeA)), "CNAME") &&
				answers(queryFrom(t, lo+"21", r, ext, dns.TypeA)) == "NXDOMAIN "
		})
	}
}
