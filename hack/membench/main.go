// Command membench measures the resident memory of svcdisc serving a large
// cluster: 10,000 Services and 100,000 endpoints by default, loaded from
// manifests or through a real API server, after the first sync and after a
// relist. It is a benchmark, run on demand (make membench), never a test.
// The relist's peak is its own: the process's peak resident size is reset
// (/proc/PID/clear_refs) once the first sync has settled.
//
//	go run ./hack/membench -source manifests
//	go run ./hack/membench -source kube -kubeconfig /tmp/svcdisc-testenv/kubeconfig -testenv hack/testenv.sh
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcdisc/svcdisc/internal/clustergen"
	"github.com/svcdisc/svcdisc/internal/harness"
)

func main() {
	source := flag.String("source", "manifests", "manifests or kube")
	services := flag.Int("services", 10000, "ClusterIP Services")
	endpoints := flag.Int("endpoints", 10, "ready endpoints per Service")
	namespaces := flag.Int("namespaces", 100, "namespaces")
	kubeconfig := flag.String("kubeconfig", os.Getenv("SVCDISC_TEST_KUBECONFIG"), "kubeconfig of the API server (source kube)")
	testenv := flag.String("testenv", "", "hack/testenv.sh, to restart the API server for the relist (source kube)")
	bin := flag.String("bin", "", "an svcdisc binary to measure instead of building ./cmd/svcdisc (to compare two builds)")
	flag.Parse()
	if err := run(*source, clustergen.Spec{Namespaces: *namespaces, Services: *services, Endpoints: *endpoints}, *kubeconfig, *testenv, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "membench:", err)
		os.Exit(1)
	}
}

func run(source string, spec clustergen.Spec, kubeconfig, testenv, prebuilt string) error {
	tmp, err := os.MkdirTemp("", "membench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := prebuilt
	if bin == "" {
		bin = filepath.Join(tmp, "svcdisc")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/svcdisc").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	nEndpoints := spec.Services * spec.Endpoints
	fmt.Printf("cluster: %d Services, %d endpoints, %d namespaces; source %s\n", spec.Services, nEndpoints, spec.Namespaces, source)

	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	base, err := measureIdle(bin, tmp, empty)
	if err != nil {
		return err
	}
	fmt.Printf("%-28s %8.1f MiB\n", "empty zone", mib(base))

	var p *proc
	var relist func() error
	switch source {
	case "manifests":
		objs := clustergen.APIObjects(spec, true)
		dir := filepath.Join(tmp, "cluster")
		os.Mkdir(dir, 0o755)
		write := func(suffix string) error {
			for _, ns := range objs.Namespaces {
				b, err := objs.YAML(ns.Name)
				if err != nil {
					return err
				}
				b = append(b, suffix...)
				if err := os.WriteFile(filepath.Join(dir, ns.Name+".yaml"), b, 0o644); err != nil {
					return err
				}
			}
			return nil
		}
		if err := write(""); err != nil {
			return err
		}
		t0 := time.Now()
		if p, err = startSvcdisc(bin, tmp, "manifests "+dir, ""); err != nil {
			return err
		}
		fmt.Printf("%-28s %8.1fs\n", "load to ready", time.Since(t0).Seconds())
		// A relist is every object delivered again: rewrite every file.
		relist = func() error {
			if err := write("# relist\n"); err != nil {
				return err
			}
			time.Sleep(3 * time.Second)
			return nil
		}
	case "kube":
		if kubeconfig == "" {
			return fmt.Errorf("-source kube needs -kubeconfig")
		}
		if err := load(kubeconfig, spec); err != nil {
			return err
		}
		t0 := time.Now()
		if p, err = startSvcdisc(bin, tmp, "kubeconfig "+kubeconfig, ""); err != nil {
			return err
		}
		fmt.Printf("%-28s %8.1fs\n", "list+watch to ready", time.Since(t0).Seconds())
		relist = func() error {
			if testenv == "" {
				return fmt.Errorf("relist needs -testenv")
			}
			for _, c := range []string{"stop-apiserver", "start-apiserver"} {
				if out, err := exec.Command(testenv, c).CombinedOutput(); err != nil {
					return fmt.Errorf("%s: %v\n%s", c, err, out)
				}
			}
			return p.waitName("svc-0.ns-0.svc.cluster.local.", 60*time.Second)
		}
	default:
		return fmt.Errorf("unknown source %q", source)
	}
	defer p.stop()
	time.Sleep(2 * time.Second)
	rss, hwm := p.memory()
	fmt.Printf("%-28s %8.1f MiB (peak %.1f MiB)\n", "after sync", mib(rss), mib(hwm))
	fmt.Printf("%-28s %8.0f B/Service, %.0f B/endpoint (all growth charged to each)\n", "per object",
		float64(rss-base)/float64(spec.Services), float64(rss-base)/float64(nEndpoints))
	steady := rss
	p.resetPeak()
	if err := relist(); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	rss, hwm = p.memory()
	fmt.Printf("%-28s %8.1f MiB (relist peak %.1f MiB, %.2fx the steady size)\n", "after relist", mib(rss), mib(hwm), float64(hwm)/float64(steady))
	coredns := float64(spec.Services)/1000 + 54
	fmt.Printf("%-28s %8.1f MiB ((pods + services)/1000 + 54 MB, pods not watched)\n", "CoreDNS sizing formula", coredns)
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

type proc struct {
	cmd       *exec.Cmd
	dnsAddr   string
	readyAddr string
}

func freePort() string {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	return l.Addr().String()
}

func startSvcdisc(bin, tmp, sourceLine, extra string) (*proc, error) {
	ready := freePort()
	dnsAddr := freePort()
	conf := filepath.Join(tmp, "Corefile")
	corefile := fmt.Sprintf(".:53 {\n    ready %s\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        %s\n        ttl 30\n%s    }\n}\n", ready, sourceLine, extra)
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--conf", conf, "--dns-addr", dnsAddr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, dnsAddr: dnsAddr, readyAddr: ready}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + ready + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("svcdisc not ready after 10 minutes")
}

func measureIdle(bin, tmp, dir string) (int64, error) {
	p, err := startSvcdisc(bin, tmp, "manifests "+dir, "")
	if err != nil {
		return 0, err
	}
	defer p.stop()
	time.Sleep(time.Second)
	rss, _ := p.memory()
	return rss, nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
}

// resetPeak makes VmHWM start again from the current resident size, so
// the peak read next is that of what happens from now on.
func (p *proc) resetPeak() {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0); err != nil {
		fmt.Fprintln(os.Stderr, "membench: cannot reset the peak resident size:", err)
	}
}

// memory reads VmRSS and VmHWM from /proc.
func (p *proc) memory() (rss, hwm int64) { return harness.Memory(p.cmd.Process.Pid) }

func (p *proc) waitName(name string, within time.Duration) error {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		r, err := dns.Exchange(m, p.dnsAddr)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not answered within %s", name, within)
}

// load creates the cluster in the API server, skipping what exists.
func load(kubeconfig string, spec clustergen.Spec) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	objs := clustergen.APIObjects(spec, false)
	if last := objs.Slices[len(objs.Slices)-1]; last != nil {
		if _, err := c.DiscoveryV1().EndpointSlices(last.Namespace).Get(ctx, last.Name, metav1.GetOptions{}); err == nil {
			return nil // loaded by an earlier run
		}
	}
	t0 := time.Now()
	for _, ns := range objs.Namespaces {
		if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !errors.IsAlreadyExists(err) {
			return err
		}
	}
	work := make(chan int)
	errc := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s, sl := objs.Services[i], objs.Slices[i]
				if _, err := c.CoreV1().Services(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil && !errors.IsAlreadyExists(err) {
					errc <- err
					return
				}
				if _, err := c.DiscoveryV1().EndpointSlices(sl.Namespace).Create(ctx, sl, metav1.CreateOptions{}); err != nil && !errors.IsAlreadyExists(err) {
					errc <- err
					return
				}
			}
		}()
	}
	for i := range objs.Services {
		select {
		case work <- i:
		case err := <-errc:
			close(work)
			return err
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	fmt.Printf("%-28s %8.1fs\n", "created in the API server", time.Since(t0).Seconds())
	return nil
}
