package zones

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func runningPod(ns, name string, ips ...string) *Pod {
	p := &Pod{Namespace: ns, Name: name, Running: true}
	for _, ip := range ips {
		p.IPs = append(p.IPs, netip.MustParseAddr(ip))
	}
	return p
}

func verifiedZone(t *testing.T, synced bool, objs ...Object) *Zone {
	t.Helper()
	o := testOptions()
	o.Pods = PodsVerified
	z := New(o)
	z.Replace(objs)
	if synced {
		z.MarkSynced()
	}
	return z
}

func TestClientNamespace(t *testing.T) {
	hostNet := runningPod("kube-system", "node-agent", "10.0.0.9")
	hostNet.HostNetwork = true
	pending := runningPod("shop", "pending", "10.1.0.7")
	pending.Running = false
	for _, tt := range []struct {
		name   string
		objs   []Object
		synced bool
		ip     string
		wantNS string // "" for no completion
	}{
		{"a running Pod's address gives its namespace", []Object{runningPod("shop", "web-0", "10.1.0.5")}, true, "10.1.0.5", "shop"},
		{"every address of a dual-stack Pod", []Object{runningPod("shop", "web-0", "10.1.0.5", "fd00::5")}, true, "fd00::5", "shop"},
		{"an IPv4-mapped client address is the IPv4 one", []Object{runningPod("shop", "web-0", "10.1.0.5")}, true, "::ffff:10.1.0.5", "shop"},
		{"an address no Pod holds", []Object{runningPod("shop", "web-0", "10.1.0.5")}, true, "10.1.0.6", ""},
		{"not synced yet", []Object{runningPod("shop", "web-0", "10.1.0.5")}, false, "10.1.0.5", ""},
		{"an address two live Pods claim is ambiguous",
			[]Object{runningPod("shop", "web-0", "10.1.0.5"), runningPod("bank", "old-0", "10.1.0.5")}, true, "10.1.0.5", ""},
		{"a Pod and a hostNetwork Pod on the node's address",
			[]Object{runningPod("shop", "web-0", "10.0.0.9"), hostNet}, true, "10.0.0.9", ""},
		{"a hostNetwork Pod alone", []Object{hostNet}, true, "10.0.0.9", ""},
		{"a Pod that is not Running", []Object{pending}, true, "10.1.0.7", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			z := verifiedZone(t, tt.synced, tt.objs...)
			ns, ok := z.ClientNamespace(netip.MustParseAddr(tt.ip))
			if ok != (tt.wantNS != "") || ns != tt.wantNS {
				t.Errorf("ClientNamespace(%s) = %q, %v; want %q", tt.ip, ns, ok, tt.wantNS)
			}
		})
	}
}

func TestClientIndexFollowsPodChanges(t *testing.T) {
	a := netip.MustParseAddr("10.1.0.5")
	b := netip.MustParseAddr("10.1.0.6")
	z := verifiedZone(t, true)
	if _, ok := z.ClientNamespace(a); ok {
		t.Fatal("completion before any Pod")
	}
	z.Update(runningPod("shop", "web-0", "10.1.0.5"))
	if ns, ok := z.ClientNamespace(a); !ok || ns != "shop" {
		t.Fatalf("a Pod that appeared: %q %v", ns, ok)
	}
	z.Update(runningPod("shop", "web-0", "10.1.0.6")) // its IP changed
	if _, ok := z.ClientNamespace(a); ok {
		t.Errorf("the old address still completes after the Pod moved")
	}
	if ns, ok := z.ClientNamespace(b); !ok || ns != "shop" {
		t.Errorf("the new address: %q %v", ns, ok)
	}
	z.Update(runningPod("bank", "pay-0", "10.1.0.6")) // a second claimant
	if _, ok := z.ClientNamespace(b); ok {
		t.Errorf("an address two Pods claim completes")
	}
	z.Delete(Key{KindPod, "shop", "web-0"})
	if ns, ok := z.ClientNamespace(b); !ok || ns != "bank" {
		t.Errorf("after the other claimant left: %q %v", ns, ok)
	}
	z.Replace(nil)
	if _, ok := z.ClientNamespace(b); ok {
		t.Errorf("a Pod removed by a full delivery still completes")
	}
}

func TestFromPodKeepsWhatCompletionNeeds(t *testing.T) {
	now := metav1.Now()
	base := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "Shop", Name: "web-0"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.0.5"}}
	terminating := base
	terminating.DeletionTimestamp = &now
	hostNet := base
	hostNet.Spec.HostNetwork = true
	pending := base
	pending.Status.Phase = corev1.PodPending

	if p, _ := FromPod(&base); p == nil || !p.Running || p.HostNetwork || p.Namespace != "shop" {
		t.Errorf("running Pod: %+v", p)
	}
	if p, _ := FromPod(&terminating); p != nil {
		t.Errorf("a terminating Pod is kept: %+v (it must get no completion)", p)
	}
	if p, _ := FromPod(&hostNet); p == nil || !p.HostNetwork {
		t.Errorf("hostNetwork Pod: %+v (it must be kept, to make its address ambiguous)", p)
	}
	if p, _ := FromPod(&pending); p == nil || p.Running {
		t.Errorf("pending Pod: %+v", p)
	}
}

// TestVerifiedPodNamesFollowThePods: with pods verified, <ip>.<ns>.pod.<zone>
// exists while a Pod of ns holds ip. The names are not stored: the client
// index answers them, so they must follow it through every change.
func TestVerifiedPodNamesFollowThePods(t *testing.T) {
	o := testOptions()
	o.Pods = PodsVerified
	z := New(o)
	web := runningPod("shop", "web-0", "10.1.0.5", "fd00::5")
	z.Replace([]Object{&Namespace{Name: "shop"}, &Namespace{Name: "bank"}, web})
	exists := func(name string) bool {
		n := z.Lookup(name)
		return n != nil && (n.Get(dns.TypeA) != nil || n.Get(dns.TypeAAAA) != nil)
	}
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"10-1-0-5.shop.pod.cluster.local.", true},
		{"fd00--5.shop.pod.cluster.local.", true},
		{"10-1-0-5.bank.pod.cluster.local.", false},           // another namespace
		{"10-1-0-6.shop.pod.cluster.local.", false},           // no Pod holds it
		{"fd00-0-0-0-0-0-0-5.shop.pod.cluster.local.", false}, // not the form verified answers
		{"10-1-0-5.nope.pod.cluster.local.", false},           // no such namespace
	} {
		if got := exists(tt.name); got != tt.want {
			t.Errorf("%s exists: %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := addrs(z.Lookup("10-1-0-5.shop.pod.cluster.local."), dns.TypeA); len(got) != 1 || got[0] != "10.1.0.5" {
		t.Errorf("A = %v, want [10.1.0.5]", got)
	}
	// The Pod moves to another address; a Pod of bank reuses the old one
	// while another of shop claims it too.
	moved := runningPod("shop", "web-0", "10.1.0.9")
	z.Update(moved)
	z.Update(runningPod("bank", "ledger-0", "10.1.0.9"))
	for name, want := range map[string]bool{
		"10-1-0-5.shop.pod.cluster.local.": false,
		"10-1-0-9.shop.pod.cluster.local.": true,
		"10-1-0-9.bank.pod.cluster.local.": true,
		"fd00--5.shop.pod.cluster.local.":  false,
	} {
		if got := exists(name); got != want {
			t.Errorf("after the move: %s exists: %v, want %v", name, got, want)
		}
	}
	z.Delete(moved.Key())
	if exists("10-1-0-9.shop.pod.cluster.local.") || !exists("10-1-0-9.bank.pod.cluster.local.") {
		t.Errorf("after shop's Pod went: shop %v, bank %v; want false, true",
			exists("10-1-0-9.shop.pod.cluster.local."), exists("10-1-0-9.bank.pod.cluster.local."))
	}
}
