package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// answers counts the outcomes of the correctness queries.
type answers struct {
	OK, Wrong, ServFail, NXDomain, Lost int
	// WrongSeen are the first wrong answers (question, and the answer's
	// ID, rcode, flags and records), for telling a server's error from a
	// stray packet.
	WrongSeen []string `json:",omitempty"`
}

// wrongKept is how many wrong answers a checker keeps, per server.
const wrongKept = 5

// Bad is every outcome but a right answer.
func (a answers) Bad() int { return a.Wrong + a.ServFail + a.NXDomain + a.Lost }

func (a answers) String() string {
	return fmt.Sprintf("%d/%d/%d/%d of %d", a.Wrong, a.ServFail, a.NXDomain, a.Lost, a.OK+a.Bad())
}

// probe is one name with the A records it must answer.
type probe struct {
	Name string
	Want []netip.Addr // sorted
}

// probes picks names among the first n Services with known answers: 200
// ClusterIP Services (their IPv4 cluster IP, read from the API) and 50
// headless ones (their ready IPv4 endpoints, which the burst never
// touches).
func probes(ctx context.Context, c kubernetes.Interface, sh shape, n int) ([]probe, error) {
	var out []probe
	step := max(1, n/250)
	for i := 0; i < n && len(out) < 250; i += step {
		v := sh.service(i)
		if v.Headless {
			want := sh.readyAddrs(v)
			slices.SortFunc(want, netip.Addr.Compare)
			out = append(out, probe{Name: sh.fqdn(v), Want: want})
			continue
		}
		s, err := c.CoreV1().Services(v.NS).Get(ctx, v.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("service %s/%s: %w", v.NS, v.Name, err)
		}
		for _, ip := range s.Spec.ClusterIPs {
			if a, err := netip.ParseAddr(ip); err == nil && a.Is4() {
				out = append(out, probe{Name: sh.fqdn(v), Want: []netip.Addr{a}})
			}
		}
	}
	return out, nil
}

// checker asks every server the probes in turn, about 200 queries a second
// each, and counts wrong answers, SERVFAILs, NXDOMAINs and timeouts.
type checker struct {
	mu     sync.Mutex
	counts map[string]*answers
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startChecker(servers []*server, ps []probe) *checker {
	ctx, cancel := context.WithCancel(context.Background())
	ch := &checker{counts: map[string]*answers{}, cancel: cancel}
	for _, s := range servers {
		a := &answers{}
		ch.counts[s.Label] = a
		ch.wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: time.Second}
			for k := 0; ctx.Err() == nil; k++ {
				p := ps[k%len(ps)]
				m := new(dns.Msg)
				m.SetQuestion(p.Name, dns.TypeA)
				r, _, err := c.Exchange(m, s.DNS)
				ch.mu.Lock()
				switch {
				case err != nil:
					a.Lost++
				case r.Rcode == dns.RcodeServerFailure:
					a.ServFail++
				case r.Rcode == dns.RcodeNameError:
					a.NXDomain++
				case !sameAddrs(r, p.Want):
					a.Wrong++
					if len(a.WrongSeen) < wrongKept {
						a.WrongSeen = append(a.WrongSeen, describeWrong(m, r))
					}
				default:
					a.OK++
				}
				ch.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return ch
}

// describeWrong is a wrong answer r to q on one line.
func describeWrong(q, r *dns.Msg) string {
	var rrs []string
	for _, rr := range r.Answer {
		rrs = append(rrs, rr.String())
	}
	return fmt.Sprintf("%s: id %d (asked %d) %s qr=%v aa=%v tc=%v answer %q", q.Question[0].Name, r.Id, q.Id,
		dns.RcodeToString[r.Rcode], r.Response, r.Authoritative, r.Truncated, rrs)
}

func sameAddrs(r *dns.Msg, want []netip.Addr) bool {
	var got []netip.Addr
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ip, _ := netip.AddrFromSlice(a.A.To4())
			got = append(got, ip)
		}
	}
	slices.SortFunc(got, netip.Addr.Compare)
	return r.Rcode == dns.RcodeSuccess && slices.Equal(got, want)
}

// Stop ends the queries and returns the counts by server label.
func (ch *checker) Stop() map[string]answers {
	ch.cancel()
	ch.wg.Wait()
	out := map[string]answers{}
	for k, v := range ch.counts {
		out[k] = *v
	}
	return out
}

// testenv drives hack/testenv.sh on one state dir.
type testenv struct {
	Script, Dir string
	Env         []string // the knobs of start
}

func (t testenv) run(ctx context.Context, sub string) error {
	// At a higher priority (children inherit it): on a busy machine a
	// restarted API server with 30,000 Services misses the one minute its
	// first ClusterIP and NodePort repair may take, and exits.
	cmd := exec.CommandContext(ctx, "nice", "-n", "-10", t.Script, sub)
	cmd.Env = append(append(os.Environ(), "SVCDISC_TESTENV_DIR="+t.Dir), t.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("testenv.sh %s: %w\n%s", sub, err, out)
	}
	return nil
}

// apiserverPID reads the API server's pid from the state dir (it changes
// with every restart).
func (t testenv) apiserverPID() int {
	b, _ := os.ReadFile(filepath.Join(t.Dir, "kube-apiserver.pid"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// etcdURL reads etcd's client URL from the state dir's env file.
func (t testenv) etcdURL() (string, error) {
	b, err := os.ReadFile(filepath.Join(t.Dir, "env"))
	if err != nil {
		return "", err
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "SVCDISC_TESTENV_ETCD_URL="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no SVCDISC_TESTENV_ETCD_URL in %s/env", t.Dir)
}

func (t testenv) kubeconfig() string { return filepath.Join(t.Dir, "kubeconfig") }

// dnsperfResult is one dnsperf run against one server.
type dnsperfResult struct {
	QPS, QCore, CPU float64 // q/s; answers per second of the server's CPU; server CPU share (1 = a core)
	Lost            string
}

// runDnsperf runs dnsperf on CPU cpu against s for d, after a warm-up that
// asks every query of the file once, and reads the server's CPU time around
// the run. q/core is the answer path's steady cost: the first time a name
// is asked costs both servers more (svcdisc makes the name's records and
// keeps the reply, CoreDNS fills its cache), and at 100,000 Services a
// short warm-up left a third of the names cold and the first seconds of
// the run at half the rate of the rest.
func runDnsperf(ctx context.Context, s *server, queries, outFile, cpu string, d time.Duration) (dnsperfResult, error) {
	port := s.DNS[strings.LastIndexByte(s.DNS, ':')+1:]
	args := func(run ...string) []string {
		return append([]string{"-c", cpu, "dnsperf", "-s", "127.0.0.1", "-p", port, "-d", queries,
			"-c", "8", "-q", "100", "-T", "1", "-t", "2"}, run...)
	}
	if out, err := exec.CommandContext(ctx, "taskset", args("-n", "1")...).CombinedOutput(); err != nil {
		return dnsperfResult{}, fmt.Errorf("dnsperf warm-up: %w\n%s", err, out)
	}
	c0, t0 := cpuTicks(s.PID()), time.Now()
	out, err := exec.CommandContext(ctx, "taskset", args("-l", strconv.FormatFloat(d.Seconds(), 'f', -1, 64))...).CombinedOutput()
	c1, wall := cpuTicks(s.PID()), time.Since(t0)
	os.WriteFile(outFile, out, 0o644)
	if err != nil {
		return dnsperfResult{}, fmt.Errorf("dnsperf: %w\n%s", err, out)
	}
	var r dnsperfResult
	var completed float64
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "Queries per second:") && len(f) >= 4:
			r.QPS, _ = strconv.ParseFloat(f[3], 64)
		case strings.HasPrefix(l, "Queries completed:") && len(f) >= 3:
			completed, _ = strconv.ParseFloat(f[2], 64)
		case strings.HasPrefix(l, "Queries lost:") && len(f) >= 4:
			r.Lost = strings.Trim(f[3], "()")
		}
	}
	cpuS := float64(c1-c0) / ticksPerSecond
	if cpuS > 0 {
		r.QCore = completed / cpuS
	}
	r.CPU = cpuS / wall.Seconds()
	return r, nil
}

// burstStats is what the EndpointSlice burst did.
type burstStats struct {
	Updates, Failed, Slices int
	Took                    time.Duration
}

// Rate is the updates a second that the API server took.
func (b burstStats) Rate() float64 { return float64(b.Updates) / max(b.Took.Seconds(), 1e-9) }

// burst updates EndpointSlices of ClusterIP Services among the first n,
// rate a second for d: each update flips the readiness of one endpoint.
// Headless Services are left alone, so that the probes' answers hold.
func burst(ctx context.Context, c kubernetes.Interface, sh shape, n, rate int, d time.Duration, log *slog.Logger) (burstStats, error) {
	var names []svc
	for i := 0; i < n && len(names) < 3000; i++ {
		if v := sh.service(i); !v.Headless {
			names = append(names, v)
		}
	}
	pool := make([]*discoveryv1.EndpointSlice, len(names))
	var wg sync.WaitGroup
	var getErr atomic.Value
	sem := make(chan struct{}, 32)
	for k, v := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sl, err := c.DiscoveryV1().EndpointSlices(v.NS).Get(ctx, v.Name+"-v4-0", metav1.GetOptions{})
			if err != nil {
				getErr.Store(err)
				return
			}
			pool[k] = sl
		})
	}
	wg.Wait()
	if err, _ := getErr.Load().(error); err != nil {
		return burstStats{}, fmt.Errorf("burst: get slices: %w", err)
	}
	locks := make([]sync.Mutex, len(pool))
	var next, ok, failed atomic.Int64
	tokens := make(chan struct{}, rate)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t0 := time.Now()
	go func() {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		defer close(tokens)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case tokens <- struct{}{}:
				default: // the workers are behind: the rate is what the API server takes
				}
			}
		}
	}()
	for range 64 {
		wg.Go(func() {
			for range tokens {
				k := int(next.Add(1)-1) % len(pool)
				locks[k].Lock()
				sl := pool[k].DeepCopy()
				r := !*sl.Endpoints[0].Conditions.Ready
				sl.Endpoints[0].Conditions.Ready = &r
				up, err := c.DiscoveryV1().EndpointSlices(sl.Namespace).Update(ctx, sl, metav1.UpdateOptions{})
				if apierrors.IsConflict(err) {
					if cur, gerr := c.DiscoveryV1().EndpointSlices(sl.Namespace).Get(ctx, sl.Name, metav1.GetOptions{}); gerr == nil {
						pool[k] = cur
					}
				}
				if err == nil {
					pool[k] = up
					ok.Add(1)
				} else if ctx.Err() == nil {
					failed.Add(1)
				}
				locks[k].Unlock()
			}
		})
	}
	wg.Wait()
	st := burstStats{Updates: int(ok.Load()), Failed: int(failed.Load()), Slices: len(pool), Took: time.Since(t0)}
	log.Info("burst done", "updates", st.Updates, "failed", st.Failed, "per second", int(st.Rate()))
	return st, nil
}
