package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/svcdisc/svcdisc/internal/harness"
)

// server is one running svcdisc or CoreDNS.
type server struct {
	Kind  string // svcdisc or coredns
	Label string // its name in the report and the file names
	DNS   string // 127.0.0.1:port
	Ready string // host:port of /ready
	Pprof string // host:port of /debug/pprof
	Log   string // file of its output
	// ReadyCPU is the CPU time (user + system, s) it had used once ready:
	// what its sync cost, which other processes on its core do not inflate
	// as they do the time to ready.
	ReadyCPU float64

	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
	cg      *cgroup
}

// corefile is kubeadm's Corefile (Corefile.example) on loopback ports,
// reading the API server from kubeconfig, plus pprof for heap profiles.
// loop and reload are left out (nothing to detect, no file to watch), and so
// is the lameduck: the harness kills the servers. pods is kubeadm's
// "insecure" (no Pod watch) unless the run creates Pods ("verified").
func corefile(dnsPort int, ready, health, metrics, pprof, kubeconfig, pods string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    errors
    health %s
    ready %s
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods %s
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus %s
    pprof %s
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30
    loadbalance
}
`, dnsPort, health, ready, kubeconfig, pods, metrics, pprof)
}

// serverOpts says how to run one server.
type serverOpts struct {
	Kind, Label, Bin, Dir, Kubeconfig, Pods string
	CPU                                     string   // taskset list, "" for none
	Cgroup                                  *cgroup  // nil: none
	Env                                     []string // added to the environment
}

// startServer starts a server in its own process group; it does not wait.
func startServer(o serverOpts) (*server, error) {
	ports, err := harness.FreePorts(5)
	if err != nil {
		return nil, err
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	s := &server{Kind: o.Kind, Label: o.Label, DNS: addr(ports[0]), Ready: addr(ports[1]), Pprof: addr(ports[4]),
		done: make(chan struct{}), cg: o.Cgroup}
	conf := filepath.Join(o.Dir, o.Label+".Corefile")
	text := corefile(ports[0], s.Ready, addr(ports[2]), addr(ports[3]), s.Pprof, o.Kubeconfig, o.Pods)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	var args []string
	if o.Cgroup != nil {
		// Join the cgroup before exec, so that every page is charged to it.
		args = append(args, "sh", "-c", `echo $$ >"$0" && exec "$@"`, o.Cgroup.procs())
	}
	if o.CPU != "" {
		args = append(args, "taskset", "-c", o.CPU)
	}
	if o.Kind == "coredns" {
		args = append(args, o.Bin, "-conf", conf)
	} else {
		args = append(args, o.Bin, "serve", "--conf", conf, "--dns-addr", s.DNS)
	}
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Dir = o.Dir
	s.cmd.Env = append(os.Environ(), o.Env...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.Log = filepath.Join(o.Dir, o.Label+".log")
	logf, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.started = time.Now()
	err = s.cmd.Start()
	logf.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Label, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	return s, nil
}

// PID of the server (taskset and sh exec into it).
func (s *server) PID() int { return s.cmd.Process.Pid }

// Alive says whether the process has not exited.
func (s *server) Alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Exit describes how the process ended ("" while it runs).
func (s *server) Exit() string {
	if s.Alive() {
		return ""
	}
	return s.cmd.ProcessState.String()
}

// waitReady polls /ready until it answers 200 and returns the time since
// the start.
func (s *server) waitReady(ctx context.Context, within time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + s.Ready + "/ready")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(s.started), nil
			}
		}
		if !s.Alive() {
			return 0, fmt.Errorf("%s exited (%s) before it was ready; log %s", s.Label, s.Exit(), s.Log)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not ready after %s; log %s", s.Label, within, s.Log)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop kills the process group at once: a graceful stop would wait out
// health's lameduck, and nothing here needs it.
func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// fetch saves an HTTP GET of the server's pprof listener to file.
func (s *server) fetch(path, file string) error {
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Get("http://" + s.Pprof + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// resetHWM sets VmHWM back to the current RSS (clear_refs 5), so that the
// next read is the peak of what comes after.
func resetHWM(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// cpuTicks is the user+system CPU time of pid, in clock ticks (1/100 s).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

const ticksPerSecond = 100

// sampler keeps the highest VmRSS of a set of processes, read every 100 ms.
// VmHWM says the same more exactly; the samples also catch a process that
// dies (its HWM is gone with it).
type sampler struct {
	mu   sync.Mutex
	peak map[int]int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startSampler(pids ...int) *sampler {
	sp := &sampler{peak: map[int]int64{}, stop: make(chan struct{})}
	sp.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			for _, pid := range pids {
				rss, _ := harness.Memory(pid)
				sp.mu.Lock()
				sp.peak[pid] = max(sp.peak[pid], rss)
				sp.mu.Unlock()
			}
			select {
			case <-sp.stop:
				return
			case <-t.C:
			}
		}
	})
	return sp
}

// Stop ends the sampling and returns the peaks by pid.
func (sp *sampler) Stop() map[int]int64 {
	close(sp.stop)
	sp.wg.Wait()
	return sp.peak
}

// cgroup is a memory cgroup with a limit, as a container runtime makes
// one: cgroup v2 (memory.max) where the memory controller is there, else
// v1 (memory.limit_in_bytes).
type cgroup struct {
	dir string
	v2  bool
}

func newCgroup(name string, limit int64) (*cgroup, error) {
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(b), "memory") {
		c := &cgroup{dir: filepath.Join("/sys/fs/cgroup", name), v2: true}
		if err := os.Mkdir(c.dir, 0o755); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		if err := c.write("memory.max", strconv.FormatInt(limit, 10)); err != nil {
			return nil, err
		}
		c.write("memory.swap.max", "0")
		return c, nil
	}
	c := &cgroup{dir: filepath.Join("/sys/fs/cgroup/memory", name)}
	if err := os.Mkdir(c.dir, 0o755); err != nil && !os.IsExist(err) {
		return nil, fmt.Errorf("cgroup (v1 memory): %w", err)
	}
	if err := c.write("memory.limit_in_bytes", strconv.FormatInt(limit, 10)); err != nil {
		return nil, err
	}
	c.write("memory.memsw.limit_in_bytes", strconv.FormatInt(limit, 10))
	return c, nil
}

func (c *cgroup) write(file, value string) error {
	if err := os.WriteFile(filepath.Join(c.dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("cgroup %s: %w", file, err)
	}
	return nil
}

func (c *cgroup) read(file string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, file))
	return string(b)
}

func (c *cgroup) procs() string { return filepath.Join(c.dir, "cgroup.procs") }

// OOMKills is the number of processes the kernel killed for the limit.
func (c *cgroup) OOMKills() int {
	file := "memory.oom_control"
	if c.v2 {
		file = "memory.events"
	}
	for l := range strings.Lines(c.read(file)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), " "); ok && k == "oom_kill" {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// Peak is the highest memory charged to the cgroup (page cache included,
// as a container's).
func (c *cgroup) Peak() int64 {
	file := "memory.max_usage_in_bytes"
	if c.v2 {
		file = "memory.peak"
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(c.read(file)), 10, 64)
	return n
}

// ResetPeak starts a new peak (v1 only; v2's memory.peak stays).
func (c *cgroup) ResetPeak() {
	if !c.v2 {
		c.write("memory.max_usage_in_bytes", "0")
	}
}

// remove deletes the cgroup; its processes must have exited.
func (c *cgroup) remove() {
	if c != nil {
		os.Remove(c.dir)
	}
}
