package main

// Fault tests against the real kube-apiserver and etcd of hack/testenv.sh
// (issue 7, section 2): each is restarted under svcdisc while it serves a
// steady query load. They stop and start the shared processes, so they
// restore them whatever happens.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcdisc/svcdisc/internal/harness"
)

// restoreTestenv makes sure, at the end of the test, that the process a
// test stops (what: "apiserver" or "etcd") runs again and the API server
// is ready, since other tests use them. start-* does nothing when the
// process runs.
func restoreTestenv(t *testing.T, env *kubeEnv, what string) {
	t.Helper()
	script := harness.NeedTestenvScript(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmds := []string{"start-" + what}
		if what == "etcd" {
			cmds = append(cmds, "start-apiserver") // in case it gave up meanwhile
		}
		for _, c := range cmds {
			if out, err := exec.CommandContext(ctx, script, c).CombinedOutput(); err != nil {
				t.Errorf("restoring the test environment: %s %s: %v\n%s", script, c, err, out)
			}
		}
		if err := waitAPI(ctx, env.client); err != nil {
			t.Errorf("the API server is not ready after the test: %v", err)
		}
	})
}

// kubeLoadFixture creates, in a fresh namespace, the names a steady load
// asks for: two ClusterIP Services with a named port (A and SRV) and a
// headless Service with two ready endpoints (A, SRV and the endpoints'
// own names). It waits until svcdisc serves them all.
func kubeLoadFixture(t *testing.T, env *kubeEnv, dnsAddr, prefix string) (ns string, probes []loadProbe) {
	t.Helper()
	ctx := context.Background()
	ns = env.namespace(t, prefix)
	zone := "." + ns + ".svc.cluster.local."
	svcs := env.client.CoreV1().Services(ns)
	for _, name := range []string{"a", "b"} {
		s := must[*corev1.Service](t)(svcs.Create(ctx, clusterIPService(ns, name,
			corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}), metav1.CreateOptions{}))
		a := name + zone + " 0 IN A " + s.Spec.ClusterIP
		srv := "_http._tcp." + name + zone + " 0 IN SRV 0 100 80 " + name + zone
		probes = append(probes,
			loadProbe{name: name + zone, qtype: dns.TypeA, want: [][]string{{a}}},
			loadProbe{name: "_http._tcp." + name + zone, qtype: dns.TypeSRV, want: [][]string{{srv}}})
	}
	must[*corev1.Service](t)(svcs.Create(ctx, headlessService(ns, "db",
		corev1.ServicePort{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}), metav1.CreateOptions{}))
	must[*discoveryv1.EndpointSlice](t)(env.client.DiscoveryV1().EndpointSlices(ns).Create(ctx, endpointSlice(ns, "db-1", "db",
		ep{"10.244.7.1", "db-0", true, false}, ep{"10.244.7.2", "db-1", true, false}), metav1.CreateOptions{}))
	probes = append(probes,
		loadProbe{name: "db" + zone, qtype: dns.TypeA, want: [][]string{{"db" + zone + " 0 IN A 10.244.7.1", "db" + zone + " 0 IN A 10.244.7.2"}}},
		loadProbe{name: "_http._tcp.db" + zone, qtype: dns.TypeSRV, want: [][]string{{
			"_http._tcp.db" + zone + " 0 IN SRV 0 50 8080 db-0.db" + zone,
			"_http._tcp.db" + zone + " 0 IN SRV 0 50 8080 db-1.db" + zone}}},
		loadProbe{name: "db-1.db" + zone, qtype: dns.TypeA, want: [][]string{{"db-1.db" + zone + " 0 IN A 10.244.7.2"}}})
	for _, p := range probes {
		eventually(t, dnsAddr, p.name, p.qtype, dns.RcodeSuccess, p.want[0]...)
	}
	return ns, probes
}

// createdAfter creates a Service once the API server is back and waits
// (up to 60 s, under the load) until svcdisc serves it.
func createdAfter(t *testing.T, env *kubeEnv, dnsAddr, ns, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitAPI(ctx, env.client); err != nil {
		t.Fatalf("API server not ready: %v", err)
	}
	// Right after a restart a write may still fail for a moment: retry.
	var s *corev1.Service
	var err error
	for {
		s, err = env.client.CoreV1().Services(ns).Create(ctx, clusterIPService(ns, name, corev1.ServicePort{Port: 80}), metav1.CreateOptions{})
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create %s after the restart: %v", name, err)
	}
	fqdn := name + "." + ns + ".svc.cluster.local."
	waitFor(t, 60*time.Second, "a Service created after the restart served", func() bool {
		rcode, _ := answer(t, dnsAddr, fqdn, dns.TypeA)
		return rcode == dns.RcodeSuccess
	})
	eventually(t, dnsAddr, fqdn, dns.TypeA, dns.RcodeSuccess, fqdn+" 0 IN A "+s.Spec.ClusterIP)
}

// killAPIServer ends the test environment's kube-apiserver with SIGKILL:
// no graceful close of its watches, the connections just die.
func killAPIServer(t *testing.T) {
	t.Helper()
	dir := os.Getenv("SVCDISC_TESTENV_DIR")
	if dir == "" {
		t.Fatal("killing the API server needs SVCDISC_TESTENV_DIR (from the test environment's env file)")
	}
	b, err := os.ReadFile(filepath.Join(dir, "kube-apiserver.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("kube-apiserver.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	waitFor(t, 10*time.Second, "kube-apiserver gone", func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(st), ") Z ")
	})
}

// apiServerRestart restarts kube-apiserver (stop: stopped gracefully, or
// killed) while four clients query seven existing names continuously: no
// query may fail or be answered wrong, and a Service created after the
// restart must appear.
func apiServerRestart(t *testing.T, kill bool) {
	env := needKube(t)
	restoreTestenv(t, env, "apiserver")
	dnsAddr, readyAddr := serveKube(t, kubeCorefile, env.kubeconfig)
	waitFor(t, 30*time.Second, "ready", func() bool { return readyStatus(t, readyAddr) == http.StatusOK })
	ns, probes := kubeLoadFixture(t, env, dnsAddr, "fault-api")

	load := startLoad(t, dnsAddr, loadOptions{workers: 4, timeout: time.Second, retry: true}, probes...)
	time.Sleep(500 * time.Millisecond)
	if kill {
		killAPIServer(t)
	} else {
		testenv(t, "stop-apiserver")
	}
	time.Sleep(2 * time.Second) // svcdisc's watches are broken and retrying
	down := load.snapshot()
	if code := readyStatus(t, readyAddr); code != http.StatusOK {
		t.Errorf("/ready = %d while the API server is down: the last known state is still served", code)
	}
	testenv(t, "start-apiserver")
	createdAfter(t, env, dnsAddr, ns, "after")
	time.Sleep(time.Second) // the load goes on past the catch-up
	s := load.stop()
	t.Logf("until the API server came back: %s", down)
	requireClean(t, "existing names across the API server restart", s)
	if down.Sent == 0 {
		t.Error("no query ran while the API server was down")
	}
}

func TestFaultKubeAPIServerRestartUnderLoad(t *testing.T) { apiServerRestart(t, false) }

func TestFaultKubeAPIServerKilledUnderLoad(t *testing.T) { apiServerRestart(t, true) }

// TestFaultKubeEtcdRestartUnderLoad stops etcd under the API server for a
// few seconds while four clients query existing names continuously, then
// starts it again: no query may fail or be answered wrong, and a Service
// created once etcd is back must appear.
func TestFaultKubeEtcdRestartUnderLoad(t *testing.T) {
	env := needKube(t)
	restoreTestenv(t, env, "etcd")
	dnsAddr, readyAddr := serveKube(t, kubeCorefile, env.kubeconfig)
	waitFor(t, 30*time.Second, "ready", func() bool { return readyStatus(t, readyAddr) == http.StatusOK })
	ns, probes := kubeLoadFixture(t, env, dnsAddr, "fault-etcd")

	load := startLoad(t, dnsAddr, loadOptions{workers: 4, timeout: time.Second, retry: true}, probes...)
	time.Sleep(500 * time.Millisecond)
	testenv(t, "stop-etcd") // about 7 s: etcd drains the API server's streams
	time.Sleep(3 * time.Second)
	down := load.snapshot()
	testenv(t, "start-etcd")
	createdAfter(t, env, dnsAddr, ns, "after")
	time.Sleep(time.Second)
	s := load.stop()
	t.Logf("until etcd came back: %s", down)
	requireClean(t, "existing names across the etcd restart", s)
	if code := readyStatus(t, readyAddr); code != http.StatusOK {
		t.Errorf("/ready = %d after etcd came back", code)
	}
}
