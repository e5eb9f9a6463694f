package clients

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/svcdisc/svcdisc/internal/harness"
)

// The side-by-side autopath test: svcdisc and CoreDNS, each with
// apCorefile, against the same API server, asked by the same real
// clients from the same Pod addresses. See TestAutopathSideBySideWithCoreDNS.

// apCorefile is both servers' Corefile (%s: the kubeconfig). prometheus
// is there for the count of queries a lookup sends.
const apCorefile = `.:53 {
    errors
    prometheus 127.0.0.1:9153
    autopath @kubernetes
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods verified
        kubeconfig %s
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . 127.0.0.1:5300
    cache 30
    loadbalance
}
`

// apNet is the prefix of the client addresses (on each namespace's lo)
// and of the Pods' IPs: a range no other test's Pods use, since the API
// server is shared with the rest of the suite. The markers of apEnv.sync
// are 10.214.1.N.
const apNet = "10.214.0."

// apProbe is the address the test's own queries come from: no Pod's.
const apProbe = apNet + "1"

// apPod is a Pod of the run. ns is "A" or "B".
type apPod struct {
	ns, name, ip string // ip: the last octet
	phase        corev1.PodPhase
	hostNetwork  bool
	// hold: a finalizer keeps the Pod in the API while it is terminating.
	hold bool
}

// apPods are created before the servers start, so both see them in their
// first list.
var apPods = []apPod{
	{ns: "A", name: "cart", ip: "10", phase: corev1.PodRunning},
	{ns: "B", name: "app", ip: "11", phase: corev1.PodRunning},
	// A reused IP: the old Pod's deletion has not reached the API yet.
	{ns: "A", name: "old", ip: "20", phase: corev1.PodRunning},
	{ns: "B", name: "new", ip: "20", phase: corev1.PodRunning},
	// A node's address, two hostNetwork Pods (ClusterFirstWithHostNet).
	{ns: "A", name: "agent-a", ip: "21", phase: corev1.PodRunning, hostNetwork: true},
	{ns: "B", name: "agent-b", ip: "21", phase: corev1.PodRunning, hostNetwork: true},
	{ns: "A", name: "agent", ip: "30", phase: corev1.PodRunning, hostNetwork: true},
	{ns: "A", name: "init", ip: "40", phase: corev1.PodPending},
	// Deleted (terminating, held by the finalizer) once the servers run.
	{ns: "A", name: "gone", ip: "50", phase: corev1.PodRunning, hold: true},
	{ns: "A", name: "old2", ip: "51", phase: corev1.PodRunning, hold: true},
	{ns: "B", name: "new2", ip: "51", phase: corev1.PodRunning},
}

// apAddrs are the client addresses: every Pod's, and those of no Pod.
var apAddrs = []string{"1", "10", "11", "12", "20", "21", "30", "40", "50", "51", "60"}

// apStep is one lookup of a case.
type apStep struct {
	from string // last octet of the client's address
	ns   string // "A" or "B": the namespace of its resolv.conf's search path
	// name is what the application resolves: {A} and {B} are the
	// namespaces, {N} the case's tag, {C} the client's (so that no cache
	// carries one client's answer into another's lookup).
	name string
	// want is the answer of the client's own walk of its search path
	// without autopath: "{EXT}" (the upstream's address for the names
	// below apSuffix), "{WEB}" (A's Service web), "" (the lookup fails).
	want string
	// pair: no real client; A and AAAA of name asked directly (no search
	// path), both answered as asked (NXDOMAIN) when right.
	pair bool
	// svcdisc, when set, is what svcdisc must do with the lookup's first
	// query: "complete" (at most 2 queries, A and AAAA) or "as-asked"
	// (the client walks: more).
	svcdisc string
}

// apCase is a situation and the lookups made in it.
type apCase struct {
	name, tag, about string
	// before changes the cluster before the case (once, both servers
	// synced afterwards).
	before func(ctx context.Context, e *apEnv) error
	steps  []apStep
	// inherent: no autopath server can give the expected answer (it
	// cannot tell a search-list candidate from the same name asked as
	// is); svcdisc must answer as CoreDNS does.
	inherent bool
}

// probe is a name of A's first search domain that does not exist and that
// A's search path completes to the upstream's address: asked by a client
// of another namespace (or as is), it must fail.
const probe = "{N}-{C}.ap.example.com.{A}.svc.cluster.local"

func apCases() []apCase {
	ext := func(from, ns, svcdisc string) apStep {
		return apStep{from: from, ns: ns, name: "{N}-{C}.ap.example.com", want: "{EXT}", svcdisc: svcdisc}
	}
	fails := func(from, ns, name string) apStep { return apStep{from: from, ns: ns, name: name} }
	var pairs []apStep
	for i := range 4 {
		pairs = append(pairs, apStep{from: "20", ns: "B", name: fmt.Sprintf("{N}%d.ap.example.com.{A}.svc.cluster.local", i), pair: true})
	}
	// The cases run in this order, and a case's before changes the
	// cluster for the cases after it too (terminating-ip-reused needs
	// terminating's deletions, watch-ip-moves watch-pod-appears' Pod).
	return []apCase{
		{name: "pod", tag: "p", about: "a Running Pod of A (10.214.0.10)", steps: []apStep{
			ext("10", "A", "complete"),
			{from: "10", ns: "A", name: "web.{A}.svc", want: "{WEB}", svcdisc: "complete"},
			fails("10", "A", "nope-{N}-{C}"),
		}},
		{name: "pod-of-B", tag: "pb", about: "a Running Pod of B (.11)", steps: []apStep{
			ext("11", "B", "complete"),
			{from: "11", ns: "B", name: "web.{A}", want: "{WEB}", svcdisc: "complete"},
		}},
		{name: "no-pod", tag: "np", about: "an address no Pod holds (.12), A's search path", steps: []apStep{
			ext("12", "A", "as-asked"),
		}},
		{name: "cache-cross-ns", tag: "cc", about: "A's Pod (.10) has a name completed; then B's Pod (.11) and a client that is no Pod (.12) ask the completed name", steps: []apStep{
			ext("10", "A", "complete"),
			fails("11", "B", "{N}-{C}.ap.example.com.{A}.svc.cluster.local"),
			fails("12", "A", "{N}-{C}.ap.example.com.{A}.svc.cluster.local"),
		}},
		{name: "cross-ns-uncached", tag: "cu", about: "B's Pod (.11) asks a name of A's search domain that nobody asked before", steps: []apStep{
			fails("11", "B", probe),
		}},
		{name: "ip-reuse", tag: "ru", about: "two Running Pods at .20, A's old one not yet deleted and B's new one; the client is B's", steps: []apStep{
			ext("20", "B", "as-asked"),
			fails("20", "B", probe),
			fails("20", "B", "{N}x-{C}.ap.example.com.{A}.svc.cluster.local"),
		}},
		{name: "ip-reuse-a-aaaa", tag: "ra", about: "A and AAAA of one name from the reused address .20 (B's Pod), asked directly, 4 names", steps: pairs},
		{name: "node-ip-two-hostnetwork", tag: "hn2", about: "hostNetwork Pods of A and B on a node's address (.21); the client is B's", steps: []apStep{
			ext("21", "B", "as-asked"),
			fails("21", "B", probe),
			fails("21", "B", "{N}x-{C}.ap.example.com.{A}.svc.cluster.local"),
		}},
		{name: "hostnetwork", tag: "hn", about: "A's hostNetwork Pod on a node's address (.30) is the client", steps: []apStep{
			ext("30", "A", "as-asked"),
		}},
		{name: "hostnetwork-other-client", tag: "hno", about: "another client on that node's address (.30) with B's search path", steps: []apStep{
			fails("30", "B", probe),
		}},
		{name: "pending", tag: "pe", about: "a Pending Pod of A with an IP (.40) is the client", steps: []apStep{
			ext("40", "A", "as-asked"),
		}},
		{name: "terminating", tag: "te", about: "A's Pod at .50 is deleted (terminating, still in the API) and is the client", before: deleteHeld, steps: []apStep{
			ext("50", "A", "as-asked"),
		}},
		{name: "terminating-other-client", tag: "teo", about: "the next owner of .50, a Pod of B whose IP is not in the API yet, is the client", steps: []apStep{
			fails("50", "B", probe),
		}},
		{name: "terminating-ip-reused", tag: "ter", about: "A's terminating Pod and B's Running one at .51; the client is B's", steps: []apStep{
			ext("51", "B", "complete"),
			fails("51", "B", probe),
			fails("51", "B", "{N}x-{C}.ap.example.com.{A}.svc.cluster.local"),
		}},
		{name: "watch-no-pod", tag: "w0", about: "no Pod at .60 yet; the client has B's search path", steps: []apStep{
			ext("60", "B", "as-asked"),
		}},
		{name: "watch-pod-appears", tag: "w1", about: "B's Pod at .60 is created (Running)", before: func(ctx context.Context, e *apEnv) error {
			return e.createPod(ctx, apPod{ns: "B", name: "late", ip: "60", phase: corev1.PodRunning})
		}, steps: []apStep{
			ext("60", "B", "complete"),
		}},
		{name: "watch-ip-moves", tag: "w2", about: "B's Pod at .60 is deleted and .60 given to a new Pod of A", before: func(ctx context.Context, e *apEnv) error {
			if err := e.deletePod(ctx, "B", "late"); err != nil {
				return err
			}
			return e.createPod(ctx, apPod{ns: "A", name: "later", ip: "60", phase: corev1.PodRunning})
		}, steps: []apStep{
			ext("60", "A", "complete"),
			fails("60", "A", "{N}-{C}.ap.example.com.{B}.svc.cluster.local"),
		}},
		{name: "inherent", tag: "in", inherent: true, about: "A's Pod (.10) asks a name of its own first search domain as is", steps: []apStep{
			fails("10", "A", probe),
		}},
	}
}

// deleteHeld deletes the Pods held by the finalizer: they stay in the API,
// terminating.
func deleteHeld(ctx context.Context, e *apEnv) error {
	for _, p := range apPods {
		if !p.hold {
			continue
		}
		if err := e.kube.CoreV1().Pods(e.nsName(p.ns)).Delete(ctx, p.name, metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete %s/%s: %w", p.ns, p.name, err)
		}
	}
	return nil
}

// apServer is one DNS server in its own namespace.
type apServer struct {
	name string // svcdisc or CoreDNS
	ns   *ns
	http *http.Client // connects inside ns
	logf string
}

// apEnv is the run: the API server, the namespaces' names, the servers.
type apEnv struct {
	kube    kubernetes.Interface
	a, b    string // the namespaces
	web     string // A's Service web's ClusterIP
	servers []*apServer
	dir     string // resolv.conf files
	markers int
	created []apPod
	// services and slices are A's, from cluster.yaml.
	services, slices []string
}

func (e *apEnv) nsName(ns string) string {
	if ns == "B" {
		return e.b
	}
	return e.a
}

func (e *apEnv) expand(s, tag, client string) string {
	return strings.NewReplacer("{A}", e.a, "{B}", e.b, "{N}", tag, "{C}", client, "{EXT}", apAddr, "{WEB}", e.web).Replace(s)
}

const apFinalizer = "svcdisc.test/hold"

// createPod creates p, scheduled (nodeName) and with its status written
// through the status subresource: there is no kubelet.
func (e *apEnv) createPod(ctx context.Context, p apPod) error {
	ip := apNet + p.ip
	if strings.Contains(p.ip, ".") {
		ip = p.ip // a marker's, whole
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: e.nsName(p.ns)},
		Spec: corev1.PodSpec{
			NodeName:    "node-1",
			HostNetwork: p.hostNetwork,
			Containers:  []corev1.Container{{Name: "c", Image: "example.com/c:1"}},
		},
	}
	if p.hostNetwork {
		pod.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	if p.hold {
		pod.Finalizers = []string{apFinalizer}
	}
	pods := e.kube.CoreV1().Pods(pod.Namespace)
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create Pod %s/%s: %w", pod.Namespace, p.name, err)
	}
	e.created = append(e.created, p)
	created.Status = corev1.PodStatus{Phase: p.phase, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if p.hostNetwork {
		created.Status.HostIP, created.Status.HostIPs = ip, []corev1.HostIP{{IP: ip}}
	}
	if _, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("status of Pod %s/%s: %w", pod.Namespace, p.name, err)
	}
	return nil
}

// deletePod deletes a Pod of namespace ns ("A" or "B") at once, its
// finalizer removed first.
func (e *apEnv) deletePod(ctx context.Context, ns, name string) error {
	return forceDelete(ctx, e.kube.CoreV1().Pods(e.nsName(ns)), name)
}

type podClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error)
	Update(ctx context.Context, pod *corev1.Pod, opts metav1.UpdateOptions) (*corev1.Pod, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

func forceDelete(ctx context.Context, pods podClient, name string) error {
	p, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(p.Finalizers) > 0 {
		p.Finalizers = nil
		if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("drop the finalizer of %s: %w", name, err)
		}
	}
	zero := int64(0)
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// removeStale deletes the Pods of an earlier run that was killed before
// its cleanup: any Pod at an address of apNet or of the markers, which
// would make every address ambiguous.
func removeStale(ctx context.Context, kube kubernetes.Interface) error {
	list, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, p := range list.Items {
		if strings.HasPrefix(p.Status.PodIP, "10.214.") {
			if err := forceDelete(ctx, kube.CoreV1().Pods(p.Namespace), p.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// createCluster creates testdata/cluster.yaml's Services and
// EndpointSlices in namespace A, their ClusterIPs left to the API server
// (the suite shares it), and returns web's.
func (e *apEnv) createCluster(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		switch head.Kind {
		case "Service":
			var s corev1.Service
			if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
				return err
			}
			s.Namespace = e.a
			if s.Spec.ClusterIP != corev1.ClusterIPNone {
				s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
			}
			created, err := e.kube.CoreV1().Services(e.a).Create(ctx, &s, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("Service %s: %w", s.Name, err)
			}
			e.services = append(e.services, s.Name)
			if s.Name == "web" {
				e.web = created.Spec.ClusterIP
			}
		case "EndpointSlice":
			var s discoveryv1.EndpointSlice
			if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
				return err
			}
			s.Namespace = e.a
			if _, err := e.kube.DiscoveryV1().EndpointSlices(e.a).Create(ctx, &s, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("EndpointSlice %s: %w", s.Name, err)
			}
			e.slices = append(e.slices, s.Name)
		}
	}
	if e.web == "" {
		return fmt.Errorf("%s: no Service web with a ClusterIP", path)
	}
	return nil
}

// sync waits until both servers have seen every Pod change made so far:
// it creates a marker Pod of B and waits until each answers its pods
// verified name. The Pod watch delivers changes in order, so a server
// that knows the marker knows what came before it.
func (e *apEnv) sync(ctx context.Context) error {
	e.markers++
	ip := fmt.Sprintf("10.214.1.%d", e.markers)
	m := apPod{ns: "B", name: fmt.Sprintf("marker-%d", e.markers), ip: ip, phase: corev1.PodRunning}
	if err := e.createPod(ctx, m); err != nil {
		return err
	}
	name := strings.ReplaceAll(ip, ".", "-") + "." + e.b + ".pod.cluster.local."
	for _, s := range e.servers {
		if err := s.await(name, 30*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// await asks name A from apProbe until the answer has an address. The
// query's EDNS and CD bits vary: CoreDNS's cache keys on them, and would
// otherwise repeat an early NXDOMAIN for its TTL.
func (s *apServer) await(name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for i := 0; ; i++ {
		time.Sleep(50 * time.Millisecond)
		r, err := exchangeFrom(s.ns.pid, apProbe, name, dns.TypeA, i%2 == 1, i%4 >= 2)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return nil
		}
		last = fmt.Sprint(err)
		if r != nil {
			last = dns.RcodeToString[r.Rcode]
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.logf)
			return fmt.Errorf("%s: no answer for %s after %v (last: %s); log:\n%s", s.name, name, limit, last, tail(b))
		}
	}
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// requests is the sum of the server's dns_requests_total (CoreDNS's and
// svcdisc's names alike), read until two reads agree: a server counts a
// query just after answering it.
func (s *apServer) requests() (int, error) {
	prev := -1
	for range 10 {
		n, err := s.readRequests()
		if err != nil {
			return 0, err
		}
		if n == prev {
			return n, nil
		}
		prev = n
		time.Sleep(20 * time.Millisecond) // a loaded machine's scheduling delay
	}
	return prev, nil
}

func (s *apServer) readRequests() (int, error) {
	resp, err := s.http.Get("http://127.0.0.1:9153/metrics")
	if err != nil {
		return 0, fmt.Errorf("%s's metrics: %w", s.name, err)
	}
	defer resp.Body.Close()
	sum := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "coredns_dns_requests_total{") && !strings.HasPrefix(l, "svcdisc_dns_requests_total{") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", l, err)
		}
		sum += int(v)
	}
	return sum, sc.Err()
}

// apResult is one server's outcome of one step for one client.
type apResult struct {
	answer string
	right  bool
	n      int // queries that reached the server
}

// apRow is one step for one client, both servers.
type apRow struct {
	c       *apCase
	step    apStep
	client  string
	name    string // the expanded name, {A}/{B} kept
	svcdisc apResult
	coredns apResult
}

// knownCoreDNS reads testdata/autopath-coredns.known: "CASE -> REASON"
// lines, the cases where CoreDNS v1.14.7 may answer wrong. A reason
// starting "random:" is a defect CoreDNS shows only sometimes (it picks
// one of the Pods at an address at random, per query).
func knownCoreDNS(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("testdata/autopath-coredns.known")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, reason, ok := strings.Cut(l, " -> ")
		if !ok {
			t.Fatalf("autopath-coredns.known: %q is not CASE -> REASON", l)
		}
		known[strings.TrimSpace(name)] = strings.TrimSpace(reason)
	}
	return known
}

// TestAutopathSideBySideWithCoreDNS runs svcdisc and CoreDNS v1.14.7 with
// the same autopath @kubernetes Corefile against the same API server, each
// on port 53 in its own network and mount namespace, and makes the same
// lookups with glibc, musl and Go's resolver from the same Pod addresses
// (issue 14): reused IPs, hostNetwork, Pending and terminating Pods, a
// cache shared by namespaces, Pods that come and go. The answer a lookup
// must get is the one the client's own walk of its search path gives
// without autopath. svcdisc must get it every time; CoreDNS's wrong
// answers are the finding, and must be among those listed in
// testdata/autopath-coredns.known.
//
// It needs what TestRealClientsResolveThroughAPodsResolvConf needs, CoreDNS
// (hack/diffcoredns.sh build; SVCDISC_REQUIRE_COREDNS=1 makes its absence
// a failure) and an API server (SVCDISC_TEST_KUBECONFIG, from
// hack/testenv.sh; SVCDISC_REQUIRE_KUBE=1 likewise).
func TestAutopathSideBySideWithCoreDNS(t *testing.T) {
	start := time.Now()
	prerequisites(t)
	coredns := harness.NeedCoreDNS(t)
	kubeconfig := harness.NeedKube(t)
	known := knownCoreDNS(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 200
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := removeStale(ctx, kube); err != nil {
		t.Fatalf("Pods of an earlier run: %v", err)
	}

	bin := t.TempDir()
	svcdisc, gai := build(t, bin)
	t.Logf("built after %v", time.Since(start).Round(time.Millisecond))
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e8, 36)
	e := &apEnv{kube: kube, a: "ap-a-" + suffix, b: "ap-b-" + suffix, dir: bin}
	for _, name := range []string{e.a, e.b} {
		// Without a controller-manager a deleted namespace stays
		// Terminating: the names are new each run, and stay.
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, p := range e.created {
			if err := forceDelete(ctx, kube.CoreV1().Pods(e.nsName(p.ns)), p.name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		for _, s := range e.services {
			if err := kube.CoreV1().Services(e.a).Delete(ctx, s, metav1.DeleteOptions{}); err != nil {
				t.Errorf("cleanup: Service %s: %v", s, err)
			}
		}
		for _, s := range e.slices {
			if err := kube.DiscoveryV1().EndpointSlices(e.a).Delete(ctx, s, metav1.DeleteOptions{}); err != nil {
				t.Errorf("cleanup: EndpointSlice %s: %v", s, err)
			}
		}
	})
	if err := e.createCluster(ctx, filepath.Join(testdata, "cluster.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, p := range apPods {
		if err := e.createPod(ctx, p); err != nil {
			t.Fatal(err)
		}
	}

	// The servers, each in a namespace of its own with the upstream, the
	// relay to the API server and the client addresses on lo. The
	// namespace's /etc/resolv.conf, which both read for autopath's host
	// search domains, has none; each lookup gets its client's Pod
	// resolv.conf in a mount namespace of its own (clientArgv).
	apiAddr := strings.TrimPrefix(cfg.Host, "https://")
	conf := filepath.Join(bin, "Corefile")
	if err := os.WriteFile(conf, fmt.Appendf(nil, apCorefile, kubeconfig), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []struct{ name, argv0 string }{{"svcdisc", svcdisc}, {"CoreDNS", coredns}} {
		n := newNS(t)
		if err := os.WriteFile(filepath.Join(n.dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var batch strings.Builder
		for _, a := range apAddrs {
			fmt.Fprintf(&batch, "addr add %s%s/32 dev lo\n", apNet, a)
		}
		batch.WriteString("addr add fd00:214::1/128 dev lo nodad\n")
		batchf := filepath.Join(n.dir, "ip.batch")
		if err := os.WriteFile(batchf, []byte(batch.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, errOut, err := n.run(nil, "ip", "-batch", batchf); err != nil {
			t.Fatalf("ip -batch: %v %s%s", err, out, errOut)
		}
		n.start(t, filepath.Join(n.dir, "upstream.log"), []string{roleEnv + "=upstream"}, n.exe)
		relayInto(t, n.pid, apiAddr)
		s := &apServer{name: srv.name, ns: n, http: httpIn(n.pid), logf: filepath.Join(bin, srv.name+".log")}
		if srv.name == "svcdisc" {
			n.start(t, s.logf, nil, srv.argv0, "serve", "--conf", conf)
		} else {
			n.start(t, s.logf, nil, srv.argv0, "-conf", conf)
		}
		e.servers = append(e.servers, s)
	}
	t.Logf("servers started after %v", time.Since(start).Round(time.Millisecond))
	for _, s := range e.servers {
		if err := s.await("web."+e.a+".svc.cluster.local.", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s answers after %v", s.name, time.Since(start).Round(time.Millisecond))
	}
	if err := e.sync(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("servers up after %v", time.Since(start).Round(time.Millisecond))

	clients := apClients(e.servers[0].ns, gai)
	var rows []apRow
	for _, c := range apCases() {
		if c.before != nil {
			if err := c.before(ctx, e); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if err := e.sync(ctx); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		var caseRows []apRow
		for _, cl := range clients {
			for _, st := range c.steps {
				if st.pair != (cl.name == "direct") {
					continue
				}
				caseRows = append(caseRows, apRow{c: &c, step: st, client: cl.name,
					name: strings.NewReplacer("{N}", c.tag, "{C}", cl.tag).Replace(st.name)})
			}
		}
		for si, s := range e.servers {
			for i := range caseRows {
				r := &caseRows[i]
				res, err := e.run(s, clients, r)
				if err != nil {
					t.Fatalf("%s %s %s: %v", c.name, r.client, r.name, err)
				}
				if si == 0 {
					r.svcdisc = res
				} else {
					r.coredns = res
				}
			}
		}
		rows = append(rows, caseRows...)
	}

	// The verdicts.
	wrong := map[string]int{}
	for _, r := range rows {
		if !r.coredns.right {
			wrong[r.c.name]++
		}
		switch {
		case r.c.inherent:
			if r.svcdisc.answer != r.coredns.answer {
				t.Errorf("%s: %s %s: svcdisc %q, CoreDNS %q: in this case svcdisc must answer as CoreDNS does", r.c.name, r.client, r.name, r.svcdisc.answer, r.coredns.answer)
			}
		case !r.svcdisc.right:
			t.Errorf("%s (%s): %s %s from %s%s (search path of %s): svcdisc answered %s, want %s", r.c.name, r.c.about, r.client, r.name, apNet, r.step.from, r.step.ns, r.svcdisc.answer, wantText(r.step))
		}
		switch r.step.svcdisc {
		case "complete":
			if r.svcdisc.n > 2 {
				t.Errorf("%s: %s %s: svcdisc got %d queries, want at most 2: the first must be completed", r.c.name, r.client, r.name, r.svcdisc.n)
			}
		case "as-asked":
			if r.svcdisc.n <= 2 {
				t.Errorf("%s: %s %s: svcdisc got %d queries: the first was completed, and must not be", r.c.name, r.client, r.name, r.svcdisc.n)
			}
		}
	}
	for _, c := range apCases() {
		reason, listed := known[c.name]
		switch {
		case wrong[c.name] > 0 && !listed:
			t.Errorf("%s: CoreDNS answered wrong %d times, and the case is not in testdata/autopath-coredns.known: a change of the harness, or a new difference to explain", c.name, wrong[c.name])
		case wrong[c.name] == 0 && listed && !strings.HasPrefix(reason, "random:"):
			t.Errorf("%s: listed as a CoreDNS defect (%s), but CoreDNS answered right: the harness no longer shows it", c.name, reason)
		case wrong[c.name] == 0 && listed:
			t.Logf("%s: CoreDNS answered right this time (%s)", c.name, reason)
		}
		delete(known, c.name)
	}
	for name := range known {
		t.Errorf("testdata/autopath-coredns.known lists %s, which is no case", name)
	}
	t.Logf("autopath side by side with CoreDNS %s: %d lookups in %v; {A} and {B} are namespaces %s and %s\n%s\nevery lookup:\n%s",
		harness.CoreDNSVersion, len(rows)*2, time.Since(start).Round(time.Millisecond), e.a, e.b, apSummary(rows), apTable(rows))
}

// apClient is a real client, or "direct": the test's own A and AAAA
// queries for the pair steps.
type apClient struct {
	name, tag string
	c         client
}

func apClients(n *ns, gai string) []apClient {
	var out []apClient
	for _, c := range clientList(n, gai, variants[:1]) {
		switch c.name {
		case "glibc getent ahosts":
			out = append(out, apClient{"glibc getent ahosts", "glibc", c})
		case "musl getaddrinfo":
			out = append(out, apClient{"musl getaddrinfo", "musl", c})
		case "go (netdns=go)":
			out = append(out, apClient{"go (netdns=go)", "go", c})
		}
	}
	return append(out, apClient{name: "direct", tag: "d"})
}

// run makes one step's lookup against s and judges its answer.
func (e *apEnv) run(s *apServer, clients []apClient, r *apRow) (apResult, error) {
	name := e.expand(r.name, "", "")
	from := apNet + r.step.from
	before, err := s.requests()
	if err != nil {
		return apResult{}, err
	}
	var res apResult
	if r.step.pair {
		var parts []string
		completed := 0
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m, err := exchangeFrom(s.ns.pid, from, name, qt, false, false)
			if err != nil {
				return res, err
			}
			parts = append(parts, dns.TypeToString[qt]+" "+describe(m))
			if m.Rcode != dns.RcodeNameError {
				completed++
			}
		}
		res.answer = strings.Join(parts, ", ")
		res.right = completed == 0
	} else {
		var cl apClient
		for _, c := range clients {
			if c.name == r.client {
				cl = c
			}
		}
		resolv := filepath.Join(e.dir, fmt.Sprintf("resolv-%s-%s.conf", r.step.ns, r.step.from))
		content := fmt.Sprintf("search %s.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5\n", e.nsName(r.step.ns), from)
		if err := os.WriteFile(resolv, []byte(content), 0o644); err != nil {
			return res, err
		}
		argv := append([]string{"unshare", "-m", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv},
			cl.c.argv(lookup{kind: "host", name: name})...)
		out, errOut, err := s.ns.run(cl.c.env, argv...)
		want := e.expand(r.step.want, "", "")
		if err != nil {
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				return res, fmt.Errorf("%v: %s", err, errOut)
			}
			res.answer = "fails"
			res.right = want == ""
		} else {
			got := cl.c.parse(out)
			slices.Sort(got)
			res.answer = strings.Join(got, " ")
			res.right = want != "" && res.answer == want
		}
	}
	after, err := s.requests()
	if err != nil {
		return res, err
	}
	res.n = after - before
	return res, nil
}

// describe is a reply in short: the rcode, a CNAME's target, the addresses.
func describe(m *dns.Msg) string {
	s := dns.RcodeToString[m.Rcode]
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.CNAME:
			s += " CNAME " + strings.TrimSuffix(rr.Target, ".")
		case *dns.A:
			s += " " + rr.A.String()
		case *dns.AAAA:
			s += " " + rr.AAAA.String()
		}
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0 {
		s += " (NODATA)"
	}
	return s
}

func wantText(st apStep) string {
	switch {
	case st.pair:
		return "A NXDOMAIN, AAAA NXDOMAIN"
	case st.want == "":
		return "fails"
	}
	return st.want
}

// verdict of a row.
func (r apRow) verdict() string {
	switch {
	case r.c.inherent && !r.svcdisc.right && !r.coredns.right:
		return "both wrong (inherent to autopath)"
	case !r.svcdisc.right && !r.coredns.right:
		return "**both wrong**"
	case !r.svcdisc.right:
		return "**svcdisc wrong**"
	case !r.coredns.right:
		return "CoreDNS wrong"
	}
	return "both right"
}

func cell(res apResult) string {
	return fmt.Sprintf("%s (%d)", res.answer, res.n)
}

// apTable is every row: case, client, lookup, expected, each server's
// answer (queries), verdict.
func apTable(rows []apRow) string {
	var b strings.Builder
	b.WriteString("| case | from | client | lookup | expected | svcdisc (queries) | CoreDNS (queries) | verdict |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | .%s %s | %s | `%s` | %s | %s | %s | %s |\n", r.c.name, r.step.from, r.step.ns, r.client, r.name,
			wantText(r.step), cell(r.svcdisc), cell(r.coredns), r.verdict())
	}
	return b.String()
}

// apSummary is a row a step, over the clients: how many answered right on
// each server, and the queries.
func apSummary(rows []apRow) string {
	var b strings.Builder
	b.WriteString("| case | client address, search path | lookup | expected | svcdisc: right, queries | CoreDNS: right, queries | CoreDNS's wrong answers |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	type key struct {
		c    string
		step apStep
	}
	var order []key
	groups := map[key][]apRow{}
	for _, r := range rows {
		k := key{r.c.name, r.step}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		g := groups[k]
		count := func(get func(apRow) apResult) string {
			right, ns := 0, []string{}
			for _, r := range g {
				if get(r).right {
					right++
				}
				ns = append(ns, strconv.Itoa(get(r).n))
			}
			return fmt.Sprintf("%d/%d, %s", right, len(g), strings.Join(ns, " "))
		}
		var bad []string
		for _, r := range g {
			if !r.coredns.right && !slices.Contains(bad, r.coredns.answer) {
				bad = append(bad, r.coredns.answer)
			}
		}
		lookupName := k.step.name
		if k.step.pair {
			lookupName = "A+AAAA " + lookupName
		}
		fmt.Fprintf(&b, "| %s | .%s, %s | `%s` | %s | %s | %s | %s |\n", k.c, k.step.from, k.step.ns, lookupName, wantText(k.step),
			count(func(r apRow) apResult { return r.svcdisc }), count(func(r apRow) apResult { return r.coredns }), strings.Join(bad, "; "))
	}
	return b.String()
}
