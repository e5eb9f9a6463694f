// Command scalebench measures svcdisc and CoreDNS v1.14.7 side by side on
// clusters of growing size in a real kube-apiserver + etcd (hack/testenv.sh):
// time to ready, resident memory after the sync, its peak during a relist
// (the API server restarted) and during a burst of EndpointSlice updates,
// bytes per Service and per endpoint, the API server's cost of one more
// watcher, and queries per CPU-second with dnsperf. Optionally svcdisc also
// runs in a memory cgroup with a container-style limit. It is a benchmark
// (make scalebench), never part of the tests; hack/README.md describes it.
//
//	go run ./hack/scalebench -steps 2000 -burst-duration 10s
//	go run ./hack/scalebench -out /tmp/scale   # 10k, 30k and 100k Services
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/svcdisc/svcdisc/internal/harness"
)

type options struct {
	Steps         []int
	PerService    int
	Namespaces    int
	Workers       int
	Phases        map[string]bool
	DnsperfFor    time.Duration
	BurstRate     int
	BurstFor      time.Duration
	RelistWait    time.Duration
	LimitMiB      int
	Out           string
	TestenvDir    string
	Reuse, Keep   bool
	CoreDNS       string
	Settle        time.Duration
	ServerCPU     string
	ClientCPU     string
	ServiceCIDR   string
	APIServerArgs string
	EtcdArgs      string
	ReadyTimeout  time.Duration
	Fill          string
	Resume        string
	ReadyRounds   int
	SvcdiscEnv    []string
	SvcdiscBin    string
}

const allPhases = "dnsperf,watcher,relist,burst,limit,profile"

func main() {
	var o options
	steps := flag.String("steps", "10000,30000,100000", "cumulative cluster sizes in Services, comma-separated")
	flag.IntVar(&o.PerService, "endpoints", 10, "mean endpoints (Pods) per Service")
	flag.IntVar(&o.Namespaces, "namespaces", 1000, "namespaces the Services are spread over")
	flag.IntVar(&o.Workers, "workers", 48, "parallel creates during the fill")
	flag.StringVar(&o.Fill, "fill", "etcd", "how to add objects: api (creates through the API server) or etcd (the first 100 Services through the API, the rest written into etcd; see hack/README.md)")
	phases := flag.String("phases", allPhases, "what to measure at each step besides ready and RSS")
	flag.DurationVar(&o.DnsperfFor, "dnsperf-duration", 10*time.Second, "length of each dnsperf run")
	flag.IntVar(&o.BurstRate, "burst-rate", 1000, "EndpointSlice updates a second in the burst")
	flag.DurationVar(&o.BurstFor, "burst-duration", 60*time.Second, "length of the burst")
	flag.DurationVar(&o.RelistWait, "relist-wait", 0, "how long to watch after the API server is back (0: 20 s + 2× the slower ready time)")
	flag.IntVar(&o.LimitMiB, "limit", 170, "memory limit (MiB) of the extra svcdisc run in a cgroup (phase limit)")
	flag.StringVar(&o.Out, "out", "", "results directory (default /tmp/scalebench-TIME)")
	flag.StringVar(&o.TestenvDir, "testenv-dir", "/tmp/svcdisc-scalebench", "state dir of the API server (wiped unless -reuse)")
	flag.BoolVar(&o.Reuse, "reuse", false, "use the API server already running in -testenv-dir (and the objects in it)")
	flag.BoolVar(&o.Keep, "keep", false, "leave the API server running at the end")
	flag.StringVar(&o.Resume, "resume", "", "results directory of an earlier run with -keep: reuse its API server, its empty-cluster baseline and its steps below -steps")
	flag.StringVar(&o.CoreDNS, "coredns", harness.CoreDNSBinary(), "CoreDNS binary (hack/diffcoredns.sh build makes it)")
	flag.DurationVar(&o.Settle, "settle", 10*time.Second, "wait after ready before RSS is read")
	flag.StringVar(&o.ServerCPU, "server-cpu", "0", "taskset CPU list of the DNS servers")
	flag.StringVar(&o.ClientCPU, "client-cpu", "1", "taskset CPU list of dnsperf")
	flag.StringVar(&o.ServiceCIDR, "service-cidr", "10.96.0.0/12,fd00:10:96::/108", "the API server's service CIDRs")
	flag.StringVar(&o.APIServerArgs, "apiserver-args", "--max-requests-inflight=2000 --max-mutating-requests-inflight=1000", "extra kube-apiserver flags")
	flag.StringVar(&o.EtcdArgs, "etcd-args", "--quota-backend-bytes=8589934592", "extra etcd flags")
	flag.DurationVar(&o.ReadyTimeout, "ready-timeout", 15*time.Minute, "how long a server may take to be ready")
	flag.IntVar(&o.ReadyRounds, "ready-rounds", 3, "extra time-to-ready rounds per step, each server alone, CoreDNS first in odd rounds; ready s is the median with the main start (svcdisc first)")
	flag.StringVar(&o.SvcdiscBin, "svcdisc-bin", "", "svcdisc binary to run (default: go build ./cmd/svcdisc into the results directory), to compare builds on one cluster")
	svcdiscEnv := flag.String("svcdisc-env", "", "environment variables for svcdisc, space-separated KEY=VALUE (GODEBUG=gctrace=1, say)")
	render := flag.String("render", "", "print the tables of the results.json in this directory, and exit")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *render != "" {
		var r report
		data, err := os.ReadFile(filepath.Join(*render, "results.json"))
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "scalebench:", err)
			os.Exit(1)
		}
		fmt.Print(r.markdown())
		return
	}
	for _, s := range strings.Split(*steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || (len(o.Steps) > 0 && n <= o.Steps[len(o.Steps)-1]) {
			fmt.Fprintf(os.Stderr, "scalebench: -steps must be growing positive numbers: %q\n", *steps)
			os.Exit(2)
		}
		o.Steps = append(o.Steps, n)
	}
	if o.Fill != "api" && o.Fill != "etcd" {
		fmt.Fprintf(os.Stderr, "scalebench: -fill is api or etcd, not %q\n", o.Fill)
		os.Exit(2)
	}
	o.Phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !strings.Contains(","+allPhases+",", ","+p+",") {
				fmt.Fprintf(os.Stderr, "scalebench: unknown phase %q (known: %s)\n", p, allPhases)
				os.Exit(2)
			}
			o.Phases[p] = true
		}
	}
	if o.Resume != "" {
		o.Reuse = true
	}
	o.SvcdiscEnv = strings.Fields(*svcdiscEnv)
	if o.Out == "" {
		o.Out = "/tmp/scalebench-" + time.Now().Format("20060102-150405")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("scalebench failed", "err", err)
		os.Exit(1)
	}
}

func buildSvcdisc(ctx context.Context, bin string, log *slog.Logger) error {
	log.Info("building svcdisc", "bin", bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/svcdisc")
	if os.Getenv("GOTOOLCHAIN") == "" {
		build.Env = append(os.Environ(), "GOTOOLCHAIN=go1.27.3") // go.mod needs it
	}
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/svcdisc: %w\n%s", err, out)
	}
	return nil
}

// bench is the state of one run.
type bench struct {
	o       options
	log     *slog.Logger
	sh      shape
	env     testenv
	svcdisc string // binary
	report  *report
	// proxy stands between the servers and the API server, and
	// kubeconfig (the servers') names it.
	proxy      *apiProxy
	kubeconfig string
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	for _, d := range []string{"bin", "logs", "queries", "profiles", "dnsperf"} {
		if err := os.MkdirAll(filepath.Join(o.Out, d), 0o755); err != nil {
			return err
		}
	}
	for _, c := range []string{"dnsperf", "taskset", "go"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s is not on PATH", c)
		}
	}
	if _, err := os.Stat(o.CoreDNS); err != nil {
		return fmt.Errorf("no CoreDNS at %s: build it with hack/diffcoredns.sh build", o.CoreDNS)
	}
	b := &bench{o: o, log: log, sh: shape{Namespaces: o.Namespaces, PerService: o.PerService, Zone: "cluster.local"},
		svcdisc: filepath.Join(o.Out, "bin", "svcdisc")}
	b.report = &report{Out: o.Out, Command: strings.Join(os.Args, " ")}
	if o.Resume != "" {
		var prev report
		data, err := os.ReadFile(filepath.Join(o.Resume, "results.json"))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &prev); err != nil {
			return fmt.Errorf("%s/results.json: %w", o.Resume, err)
		}
		b.report.Empty = prev.Empty
		b.report.Command = prev.Command + "; then " + b.report.Command
		for _, st := range prev.Steps {
			if st.N < o.Steps[0] && st.Servers != nil {
				b.report.Steps = append(b.report.Steps, st)
			}
		}
	}
	if o.SvcdiscBin != "" {
		b.svcdisc = o.SvcdiscBin
	} else if err := buildSvcdisc(ctx, b.svcdisc, log); err != nil {
		return err
	}
	script, err := filepath.Abs("hack/testenv.sh")
	if err != nil {
		return err
	}
	b.env = testenv{Script: script, Dir: o.TestenvDir, Env: []string{
		"SVCDISC_TESTENV_SERVICE_CIDR=" + o.ServiceCIDR,
		"SVCDISC_TESTENV_APISERVER_ARGS=" + o.APIServerArgs,
		"SVCDISC_TESTENV_ETCD_ARGS=" + o.EtcdArgs,
		"SVCDISC_TESTENV_TIMEOUT=600",
	}}
	if !o.Reuse {
		log.Info("starting the API server", "dir", o.TestenvDir)
		if err := b.env.run(ctx, "start"); err != nil {
			return err
		}
	}
	if !o.Keep {
		defer func() {
			if err := b.env.run(context.Background(), "stop"); err != nil {
				log.Error("stopping the API server", "err", err)
			}
		}()
	}
	client, err := newClient(b.env.kubeconfig())
	if err != nil {
		return err
	}
	if b.proxy, b.kubeconfig, err = proxied(b.env.kubeconfig()); err != nil {
		return err
	}
	defer b.proxy.Close()

	// The empty baseline: both servers on an empty cluster.
	if !o.Reuse {
		if err := b.baseline(ctx); err != nil {
			return err
		}
	}
	from := 0
	if o.Reuse {
		if from, err = existing(ctx, client, b.sh, o.Steps[len(o.Steps)-1], o.Workers); err != nil {
			return err
		}
		log.Info("reusing the objects in the API server", "services up to", from)
	}
	for _, n := range o.Steps {
		var st fillStats
		if from < n {
			if o.Fill == "etcd" {
				url, uerr := b.env.etcdURL()
				if uerr != nil {
					return uerr
				}
				st, err = fillEtcd(ctx, client, url, b.sh, from, n, o.Workers, log)
			} else {
				st, err = fill(ctx, client, b.sh, from, n, o.Workers, log)
			}
			if err != nil {
				return fmt.Errorf("fill to %d: %w", n, err)
			}
			from = n
		}
		res := &stepResult{N: n, Counts: b.sh.count(n), Fill: st}
		b.report.Steps = append(b.report.Steps, res)
		err = b.step(ctx, client, res)
		if werr := b.report.write(); werr != nil {
			log.Error("writing the report", "err", werr)
		}
		if err != nil {
			return fmt.Errorf("step %d: %w", n, err)
		}
	}
	fmt.Print(b.report.markdown())
	return nil
}

// start starts one server of kind with the run's settings and waits until
// it is ready.
func (b *bench) start(ctx context.Context, kind, label string, cg *cgroup) (*server, time.Duration, error) {
	bin := b.svcdisc
	if kind == "coredns" {
		bin = b.o.CoreDNS
	}
	var env []string
	if kind == "svcdisc" {
		env = b.o.SvcdiscEnv
	}
	s, err := startServer(serverOpts{Kind: kind, Label: label, Bin: bin, Dir: filepath.Join(b.o.Out, "logs"),
		Kubeconfig: b.kubeconfig, Pods: "insecure", CPU: b.o.ServerCPU, Cgroup: cg, Env: env})
	if err != nil {
		return nil, 0, err
	}
	d, err := s.waitReady(ctx, b.o.ReadyTimeout)
	if err != nil {
		return s, 0, err
	}
	s.ReadyCPU = float64(cpuTicks(s.PID())) / ticksPerSecond
	b.log.Info("ready", "server", label, "after", d.Round(time.Millisecond), "cpu s", s.ReadyCPU)
	return s, d, nil
}

func (b *bench) baseline(ctx context.Context) error {
	for _, kind := range []string{"svcdisc", "coredns"} {
		s, _, err := b.start(ctx, kind, kind+".empty", nil)
		if err != nil {
			s.stop()
			return err
		}
		sleep(ctx, b.o.Settle)
		rss, _ := harness.Memory(s.PID())
		s.stop()
		if b.report.Empty == nil {
			b.report.Empty = map[string]int64{}
		}
		b.report.Empty[kind] = rss
		b.log.Info("empty cluster", "server", kind, "rss MiB", mib(rss))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// step measures both servers on the cluster as it is now.
func (b *bench) step(ctx context.Context, client kubernetes.Interface, res *stepResult) error {
	o, log := b.o, b.log
	tag := fmt.Sprintf("%dk", res.N/1000)
	if res.N < 1000 {
		tag = strconv.Itoa(res.N)
	}
	log.Info("step", "services", res.N, "endpoints", res.Counts.Endpoints, "slices", res.Counts.Slices)
	res.Servers = map[string]*serverResult{}
	// Let the API server's watch cache catch up with the fill first (a
	// consistent list waits for it), or the first server started pays for it.
	for range 2 {
		if _, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return err
		}
		if _, err := client.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return err
		}
		sleep(ctx, 5*time.Second)
	}
	var servers []*server
	var cg *cgroup
	defer func() {
		for _, s := range servers {
			s.stop()
		}
		cg.remove() // after its process is gone
	}()
	for _, kind := range []string{"svcdisc", "coredns"} {
		s, d, err := b.start(ctx, kind, kind+"."+tag, nil)
		if s != nil {
			servers = append(servers, s)
		}
		if err != nil {
			return err
		}
		res.Servers[kind] = &serverResult{Ready: d.Seconds(), ReadyRuns: []float64{d.Seconds()}, ReadyCPU: []float64{s.ReadyCPU}}
	}
	svcd, core := servers[0], servers[1]
	if err := b.readyRounds(ctx, tag, res); err != nil {
		return err
	}

	var limited *server
	if o.Phases["limit"] && o.LimitMiB > 0 {
		var err error
		if cg, err = newCgroup("scalebench-svcdisc", int64(o.LimitMiB)<<20); err != nil {
			return err
		}
		lr := &limitResult{LimitMiB: o.LimitMiB}
		res.Limited = lr
		s, d, err := b.start(ctx, "svcdisc", "svcdisc-limit."+tag, cg)
		if s != nil {
			limited = s
			servers = append(servers, s)
		}
		lr.Synced = err == nil
		lr.Ready = d.Seconds()
		if err != nil {
			lr.Note = err.Error()
			log.Warn("svcdisc in the cgroup did not get ready", "err", err)
		}
	}
	sleep(ctx, o.Settle)
	for _, s := range []*server{svcd, core} {
		r := res.Servers[s.Kind]
		r.RSS, r.SyncPeak = harness.Memory(s.PID())
		log.Info("after sync", "server", s.Label, "rss MiB", mib(r.RSS), "peak MiB", mib(r.SyncPeak))
	}

	if o.Phases["profile"] {
		for _, s := range []*server{svcd, core} {
			base := filepath.Join(o.Out, "profiles", s.Label)
			if err := s.fetch("/debug/pprof/heap", base+".heap.pb.gz"); err != nil {
				log.Warn("heap profile", "server", s.Label, "err", err)
				continue
			}
			s.fetch("/debug/pprof/heap?debug=1", base+".heap.txt")
			bin := b.svcdisc
			if s.Kind == "coredns" {
				bin = o.CoreDNS
			}
			top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-sample_index=inuse_space", bin, base+".heap.pb.gz").CombinedOutput()
			if err == nil {
				os.WriteFile(base+".top.txt", top, 0o644)
			}
		}
	}

	if o.Phases["dnsperf"] {
		// q/core is the answer path's cost: wait until a server is done
		// with what the sync left (a queue, garbage) before asking.
		for _, s := range []*server{svcd, core} {
			waitIdle(ctx, s.PID(), 5*time.Minute, log, s.Label)
		}
		mixes := map[string]func(f *os.File) error{
			"a":        func(f *os.File) error { return b.sh.writeA(f, res.N, 100000) },
			"nxdomain": func(f *os.File) error { return b.sh.writeNXDomain(f, res.N, 100000) },
		}
		for _, mix := range []string{"a", "nxdomain"} {
			qf := filepath.Join(o.Out, "queries", tag+"."+mix+".txt")
			f, err := os.Create(qf)
			if err != nil {
				return err
			}
			err = mixes[mix](f)
			f.Close()
			if err != nil {
				return err
			}
			for _, s := range []*server{svcd, core} {
				r, err := runDnsperf(ctx, s, qf, filepath.Join(o.Out, "dnsperf", s.Label+"."+mix+".txt"), o.ClientCPU, o.DnsperfFor)
				if err != nil {
					return err
				}
				rs := res.Servers[s.Kind]
				if rs.Dnsperf == nil {
					rs.Dnsperf = map[string]dnsperfResult{}
				}
				rs.Dnsperf[mix] = r
				log.Info("dnsperf", "server", s.Label, "mix", mix, "q/s", int(r.QPS), "q/core", int(r.QCore), "cpu", fmt.Sprintf("%.2f", r.CPU), "lost", r.Lost)
			}
		}
	}

	if o.Phases["watcher"] {
		for _, kind := range []string{"svcdisc", "coredns"} {
			if err := b.watcherCost(ctx, kind, tag, res.Servers[kind]); err != nil {
				return err
			}
		}
	}

	ps, err := probes(ctx, client, b.sh, res.N)
	if err != nil {
		return err
	}
	watch := []*server{svcd, core}
	if limited != nil && limited.Alive() {
		watch = append(watch, limited)
	}

	if o.Phases["relist"] {
		wait := o.RelistWait
		if wait == 0 {
			wait = 20*time.Second + 2*time.Duration(max(res.Servers["svcdisc"].Ready, res.Servers["coredns"].Ready)*float64(time.Second))
		}
		if err := restoreIPAddresses(ctx, client, o.Workers, log); err != nil {
			return err
		}
		for _, s := range []*server{svcd, core} {
			res.Servers[s.Kind].BeforeRelist, _ = harness.Memory(s.PID())
		}
		peaks, answers, back, err := b.disturb(ctx, watch, cg, ps, func() error {
			log.Info("relist: restarting the API server")
			// The servers reach the new API server once it is ready
			// (start-apiserver waits for /readyz), as behind a load
			// balancer; their relists then come at once.
			b.proxy.Hold()
			defer b.proxy.Release()
			if err := b.env.run(ctx, "stop-apiserver"); err != nil {
				return err
			}
			t0 := time.Now()
			if err := b.env.run(ctx, "start-apiserver"); err != nil {
				return err
			}
			b.proxy.Release()
			log.Info("relist: API server back", "after", time.Since(t0).Round(time.Millisecond), "watching for", wait)
			sleep(ctx, wait)
			return nil
		})
		if err != nil {
			return err
		}
		res.APIRestart = back.Seconds()
		b.heapAfter(ctx, "relist", svcd, core)
		for _, s := range []*server{svcd, core} {
			r := res.Servers[s.Kind]
			r.RelistPeak, r.RelistAnswers = peaks[s.Label], answers[s.Label]
			r.AfterRelist, _ = harness.Memory(s.PID())
		}
		if limited != nil {
			res.Limited.AliveAfterRelist = limited.Alive()
			res.Limited.RelistAnswers = answers[limited.Label]
		}
	}

	if o.Phases["burst"] {
		peaks, answers, _, err := b.disturb(ctx, watch, cg, ps, func() error {
			st, err := burst(ctx, client, b.sh, res.N, o.BurstRate, o.BurstFor, log)
			res.Burst = st
			sleep(ctx, 5*time.Second)
			return err
		})
		if err != nil {
			return err
		}
		for _, s := range []*server{svcd, core} {
			r := res.Servers[s.Kind]
			r.BurstPeak, r.BurstAnswers = peaks[s.Label], answers[s.Label]
			r.AfterBurst, _ = harness.Memory(s.PID())
		}
		if limited != nil {
			res.Limited.AliveAfterBurst = limited.Alive()
		}
		b.heapAfter(ctx, "burst", svcd, core)
	}
	if cg != nil {
		res.Limited.OOMKills = cg.OOMKills()
		res.Limited.PeakMiB = mib(cg.Peak())
		if limited != nil {
			res.Limited.Exit = limited.Exit()
			res.Limited.RSS, _ = harness.Memory(limited.PID())
		}
	}
	for _, s := range []*server{svcd, core} {
		if !s.Alive() {
			return fmt.Errorf("%s exited during the step (%s); log %s", s.Label, s.Exit(), s.Log)
		}
	}
	return nil
}

// readyRounds measures the time to ready again, o.ReadyRounds times, each
// server alone (the ones of the step keep running, idle). Whichever server
// starts first after the API server has served the other one's sync may
// find it warmer (its heap grown, its caches full): the order alternates,
// CoreDNS first in the odd rounds, so that with the step's own start
// (svcdisc first) an odd number of rounds gives each order as often. Ready
// becomes the median of all the runs.
func (b *bench) readyRounds(ctx context.Context, tag string, res *stepResult) error {
	for i := range b.o.ReadyRounds {
		order := []string{"coredns", "svcdisc"}
		if i%2 == 1 {
			order = []string{"svcdisc", "coredns"}
		}
		for _, kind := range order {
			s, d, err := b.start(ctx, kind, fmt.Sprintf("%s-ready%d.%s", kind, i+1, tag), nil)
			s.stop()
			if err != nil {
				return err
			}
			r := res.Servers[kind]
			r.ReadyRuns = append(r.ReadyRuns, d.Seconds())
			r.ReadyCPU = append(r.ReadyCPU, s.ReadyCPU)
		}
	}
	for _, kind := range []string{"svcdisc", "coredns"} {
		r := res.Servers[kind]
		r.Ready = median(r.ReadyRuns)
		b.log.Info("ready", "server", kind, "median s", fmt.Sprintf("%.2f", r.Ready), "runs", fmt.Sprint(r.ReadyRuns), "cpu s", fmt.Sprint(r.ReadyCPU))
	}
	return nil
}

// median of xs, not empty.
func median(xs []float64) float64 {
	xs = slices.Sorted(slices.Values(xs))
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// disturb runs f (a relist, a burst) while it reads the servers' peak RSS
// and asks them the probes; the peak is the higher of VmHWM (reset first)
// and the 100 ms samples.
func (b *bench) disturb(ctx context.Context, servers []*server, cg *cgroup, ps []probe, f func() error) (map[string]int64, map[string]answers, time.Duration, error) {
	var pids []int
	for _, s := range servers {
		if err := resetHWM(s.PID()); err != nil {
			b.log.Warn("clear_refs", "server", s.Label, "err", err)
		}
		pids = append(pids, s.PID())
	}
	if cg != nil {
		cg.ResetPeak()
	}
	sp := startSampler(pids...)
	ch := startChecker(servers, ps)
	sleep(ctx, 2*time.Second)
	t0 := time.Now()
	err := f()
	took := time.Since(t0)
	answers := ch.Stop()
	sampled := sp.Stop()
	peaks := map[string]int64{}
	for _, s := range servers {
		_, hwm := harness.Memory(s.PID())
		peaks[s.Label] = max(hwm, sampled[s.PID()])
		b.log.Info("peak", "server", s.Label, "MiB", mib(peaks[s.Label]), "wrong/servfail/nxdomain/lost", answers[s.Label].String())
		for _, w := range answers[s.Label].WrongSeen {
			b.log.Warn("wrong answer", "server", s.Label, "answer", w)
		}
	}
	return peaks, answers, took, err
}

// watcherCost starts a second replica of kind and reads what its sync cost
// the API server: CPU time beyond the idle rate, and the change in RSS.
func (b *bench) watcherCost(ctx context.Context, kind, tag string, r *serverResult) error {
	api := b.env.apiserverPID()
	if api == 0 {
		return errors.New("no API server pid")
	}
	idle := 5 * time.Second
	c0 := cpuTicks(api)
	rss0, _ := harness.Memory(api)
	sleep(ctx, idle)
	idleRate := float64(cpuTicks(api)-c0) / ticksPerSecond / idle.Seconds()
	c1, t1 := cpuTicks(api), time.Now()
	s, ready, err := b.start(ctx, kind, kind+"-2."+tag, nil)
	defer s.stop()
	if err != nil {
		return err
	}
	r.Ready2 = ready.Seconds()
	sleep(ctx, b.o.Settle)
	cpu := float64(cpuTicks(api)-c1)/ticksPerSecond - idleRate*time.Since(t1).Seconds()
	rss1, _ := harness.Memory(api)
	r.APICPU, r.APIRSS = cpu, rss1-rss0
	b.log.Info("one more watcher", "server", kind, "apiserver CPU s", fmt.Sprintf("%.2f", cpu), "apiserver RSS delta MiB", fmt.Sprintf("%.1f", mib(rss1-rss0)))
	return nil
}

// waitIdle waits until pid uses under 5% of a core over 2 s, or for at most
// limit.
func waitIdle(ctx context.Context, pid int, limit time.Duration, log *slog.Logger, label string) {
	t0 := time.Now()
	for time.Since(t0) < limit && ctx.Err() == nil {
		c0 := cpuTicks(pid)
		sleep(ctx, 2*time.Second)
		if float64(cpuTicks(pid)-c0)/ticksPerSecond/2 < 0.05 {
			log.Info("idle", "server", label, "after", time.Since(t0).Round(time.Second))
			return
		}
	}
	log.Warn("still busy", "server", label, "after", limit)
}

// heapAfter saves the servers' heap profiles after a phase (profile phase
// only): their MemStats say whether the RSS left is live heap or heap the
// runtime has not returned yet.
func (b *bench) heapAfter(ctx context.Context, phase string, servers ...*server) {
	if !b.o.Phases["profile"] {
		return
	}
	for _, s := range servers {
		base := filepath.Join(b.o.Out, "profiles", s.Label+".after-"+phase)
		if err := s.fetch("/debug/pprof/heap?debug=1", base+".heap.txt"); err != nil {
			b.log.Warn("heap profile", "server", s.Label, "err", err)
		}
	}
}
