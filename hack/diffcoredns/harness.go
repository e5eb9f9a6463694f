package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/svcdisc/svcdisc/internal/harness"
)

// Env is what every case runs against: the two binaries and the API server.
type Env struct {
	CoreDNS    string // path of the coredns binary
	Svcdisc    string // path of the svcdisc binary
	Kubeconfig string
	// Logf, if set, receives progress lines (process starts, waits).
	Logf func(format string, args ...any)

	client dynamic.Interface
}

// Connect checks that the API server answers.
func (e *Env) Connect(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", e.Kubeconfig, err)
	}
	cfg.Timeout = 10 * time.Second
	cfg.QPS, cfg.Burst = 1000, 1000
	if e.client, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := e.client.Resource(namespaceGVR).List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("API server of %s: %w", e.Kubeconfig, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// Status of one query.
type Status string

const (
	Same      Status = "same"
	Different Status = "DIFFERENT"
	Known     Status = "known" // different, listed in the differences section
	Bug       Status = "bug"   // different, listed with a reason starting "BUG:"
	NowSame   Status = "same*" // listed in the differences section, but the same now
)

// Row is the outcome of one query.
type Row struct {
	Query   string // the line as written
	Asked   string // the expanded name and type
	Status  Status
	Reason  string // from the differences section
	CoreDNS Answer
	Svcdisc Answer
}

// Result is the outcome of one case.
type Result struct {
	Case *Case
	Rows []Row
}

// Count of rows with status s.
func (r *Result) Count(s Status) int {
	n := 0
	for _, row := range r.Rows {
		if row.Status == s {
			n++
		}
	}
	return n
}

var (
	namespaceGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	kinds        = map[string]schema.GroupVersionResource{
		"v1/Service":                             {Version: "v1", Resource: "services"},
		"v1/Pod":                                 {Version: "v1", Resource: "pods"},
		"v1/ConfigMap":                           {Version: "v1", Resource: "configmaps"},
		"discovery.k8s.io/v1/EndpointSlice":      {Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
		"v1/Endpoints":                           {Version: "v1", Resource: "endpoints"},
		"discovery.k8s.io/v1beta1/EndpointSlice": {Group: "discovery.k8s.io", Version: "v1beta1", Resource: "endpointslices"},
	}
)

// server is a running CoreDNS or svcdisc.
type server struct {
	name string
	addr string
	cmd  *exec.Cmd
	logf string // the file of its output
	done chan struct{}
}

// log is the end of the server's output.
func (s *server) log() string {
	b, err := os.ReadFile(s.logf)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = append([]byte("…"), b[len(b)-4000:]...)
	}
	return string(b)
}

// Run runs one case: namespaces, objects, upstream, both servers, the
// queries. work is a directory for the Corefiles, files and logs.
func (e *Env) Run(ctx context.Context, c *Case, work string) (*Result, error) {
	if e.client == nil {
		if err := e.Connect(ctx); err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(work, "files")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	vars := map[string]string{
		"NS":         "dc-" + sanitize(c.Name) + "-" + suffix,
		"NS2":        "dc2-" + sanitize(c.Name) + "-" + suffix,
		"DIR":        dir,
		"KUBECONFIG": e.Kubeconfig,
	}
	if len(vars["NS"]) > 63 {
		vars["NS"], vars["NS2"] = "dc-"+suffix, "dc2-"+suffix
	}
	namespaces := []string{vars["NS"]}
	if strings.Contains(c.Objects, "{NS2}") || strings.Contains(c.Corefile, "{NS2}") {
		namespaces = append(namespaces, vars["NS2"])
	}

	var upLines []string
	for _, l := range c.Upstream {
		l, err := expand(l, vars, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: upstream: %w", c.File, err)
		}
		upLines = append(upLines, l)
	}
	up, err := startUpstream(upLines)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	vars["UPSTREAM"] = up.Addr

	// The objects.
	for _, ns := range namespaces {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
		if _, err := e.client.Resource(namespaceGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	objs, err := e.createObjects(ctx, c, vars)
	defer e.deleteObjects(objs)
	if err != nil {
		return nil, err
	}
	funcs := map[string]func(string) (string, error){
		"REV": reverseName,
		"CLUSTERIP": func(arg string) (string, error) {
			return clusterIP(objs, vars["NS"], arg, false)
		},
		"CLUSTERIP6": func(arg string) (string, error) {
			return clusterIP(objs, vars["NS"], arg, true)
		},
	}

	for name, text := range c.Files {
		text, err := expand(text, vars, funcs)
		if err != nil {
			return nil, fmt.Errorf("%s: files/%s: %w", c.File, name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}

	// The servers, started together.
	var servers [2]*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for i, name := range []string{"coredns", "svcdisc"} {
		ports, err := harness.FreePorts(4)
		if err != nil {
			return nil, err
		}
		v := map[string]string{
			"PORT":    fmt.Sprint(ports[0]),
			"HEALTH":  fmt.Sprintf("127.0.0.1:%d", ports[1]),
			"READY":   fmt.Sprintf("127.0.0.1:%d", ports[2]),
			"METRICS": fmt.Sprintf("127.0.0.1:%d", ports[3]),
		}
		for k, val := range vars {
			v[k] = val
		}
		corefile, err := expand(c.Corefile, v, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: Corefile: %w", c.File, err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
		conf := filepath.Join(work, name+".Corefile")
		var cmd *exec.Cmd
		if name == "coredns" {
			corefile = coreDNSCorefile(corefile)
			cmd = exec.Command(e.CoreDNS, "-conf", conf, "-dns.port", v["PORT"])
		} else {
			cmd = exec.Command(e.Svcdisc, "serve", "--conf", conf, "--dns-addr", addr)
		}
		if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
			return nil, err
		}
		cmd.Dir = work
		logf, err := os.Create(filepath.Join(work, name+".log"))
		if err != nil {
			return nil, err
		}
		s := &server{name: name, addr: addr, cmd: cmd, logf: logf.Name(), done: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		e.logf("%s: starting %s", c.Name, strings.Join(cmd.Args, " "))
		err = cmd.Start()
		logf.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		go func() { cmd.Wait(); close(s.done) }()
		servers[i] = s
	}

	probe := Query{Type: dns.TypeHINFO, Class: dns.ClassINET}
	rcode := c.ProbeRcode
	if c.Probe != nil {
		probe = *c.Probe
	} else {
		svc := firstService(objs, vars["NS"])
		if svc == "" {
			return nil, fmt.Errorf("%s: no Service in {NS} to wait for: add a probe section", c.File)
		}
		probe.Name = svc + ".{NS}.svc.cluster.local."
	}
	if probe.Name, err = expand(probe.Name, vars, funcs); err != nil {
		return nil, fmt.Errorf("%s: probe: %w", c.File, err)
	}
	for _, s := range servers {
		if err := e.waitReady(ctx, s, probe, rcode); err != nil {
			return nil, err
		}
	}

	res := &Result{Case: c}
	for _, q := range c.Queries {
		name, err := expand(q.Name, vars, funcs)
		if err != nil {
			return nil, fmt.Errorf("%s: query %q: %w", c.File, q.Line, err)
		}
		exp := q
		exp.Name = dns.Fqdn(name)
		row := Row{Query: q.Key, Asked: exp.Name + " " + dns.TypeToString[q.Type]}
		row.CoreDNS = ask(servers[0].addr, exp)
		row.Svcdisc = ask(servers[1].addr, exp)
		reason, listed := c.Differences[q.Key]
		same := row.CoreDNS.Equal(row.Svcdisc)
		switch {
		case same && listed:
			row.Status, row.Reason = NowSame, reason
		case same:
			row.Status = Same
		case listed && strings.HasPrefix(reason, "BUG:"):
			row.Status, row.Reason = Bug, reason
		case listed:
			row.Status, row.Reason = Known, reason
		default:
			row.Status = Different
		}
		res.Rows = append(res.Rows, row)
	}
	for _, s := range servers {
		select {
		case <-s.done:
			return res, fmt.Errorf("%s exited during the queries:\n%s", s.name, s.log())
		default:
		}
	}
	return res, nil
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	s = regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(s, "-")
	return strings.Trim(s, "-")
}

type object struct {
	gvr schema.GroupVersionResource
	u   *unstructured.Unstructured
}

// createObjects creates the case's objects in order; a status in the YAML is
// written afterwards through the status subresource (a Pod's podIP).
func (e *Env) createObjects(ctx context.Context, c *Case, vars map[string]string) ([]object, error) {
	text, err := expand(c.Objects, vars, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: objects: %w", c.File, err)
	}
	var out []object
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(text, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return out, fmt.Errorf("%s: objects, document %d: %w", c.File, i+1, err)
		}
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		key := u.GetAPIVersion() + "/" + u.GetKind()
		gvr, ok := kinds[key]
		if !ok {
			return out, fmt.Errorf("%s: objects, document %d: kind %s is not one the harness knows", c.File, i+1, key)
		}
		if u.GetNamespace() == "" {
			u.SetNamespace(vars["NS"])
		}
		status, hasStatus := m["status"]
		delete(m, "status")
		ri := e.client.Resource(gvr).Namespace(u.GetNamespace())
		created, err := ri.Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			return out, fmt.Errorf("%s: create %s %s/%s: %w", c.File, u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		if hasStatus {
			created.Object["status"] = status
			if created, err = ri.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
				return out, fmt.Errorf("%s: status of %s %s/%s: %w", c.File, u.GetKind(), u.GetNamespace(), u.GetName(), err)
			}
		}
		out = append(out, object{gvr, created})
	}
	return out, nil
}

// deleteObjects deletes what a case created (Services, EndpointSlices and
// unscheduled Pods go at once; namespaces would stay Terminating without a
// controller-manager, so they are left), so that later cases and runs do
// not see its endpoint addresses in their PTR answers.
func (e *Env) deleteObjects(objs []object) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		e.client.Resource(o.gvr).Namespace(o.u.GetNamespace()).Delete(ctx, o.u.GetName(), metav1.DeleteOptions{})
	}
}

func clusterIP(objs []object, ns, name string, v6 bool) (string, error) {
	if n, s, ok := strings.Cut(name, "/"); ok {
		ns, name = n, s
	}
	for _, o := range objs {
		if o.u.GetKind() != "Service" || o.u.GetNamespace() != ns || o.u.GetName() != name {
			continue
		}
		ips, _, _ := unstructured.NestedStringSlice(o.u.Object, "spec", "clusterIPs")
		for _, ip := range ips {
			if p := net.ParseIP(ip); p != nil && (p.To4() == nil) == v6 {
				return ip, nil
			}
		}
		return "", fmt.Errorf("Service %s/%s has no IPv%s cluster IP (%v)", ns, name, map[bool]string{false: "4", true: "6"}[v6], ips)
	}
	return "", fmt.Errorf("no Service %s/%s among the objects", ns, name)
}

func firstService(objs []object, ns string) string {
	for _, o := range objs {
		if o.u.GetKind() == "Service" && o.u.GetNamespace() == ns {
			return o.u.GetName()
		}
	}
	return ""
}

// waitReady polls the probe until it gets rcode: CoreDNS's kubernetes
// plugin and svcdisc answer SERVFAIL until their first sync, and CoreDNS
// takes a few seconds to start.
func (e *Env) waitReady(ctx context.Context, s *server, probe Query, rcode int) error {
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	var last string
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited before answering:\n%s", s.name, s.log())
		default:
		}
		a := ask(s.addr, probe)
		if a.Err == "" && a.Rcode == dns.RcodeToString[rcode] {
			e.logf("%s answers %s %s %s after %v", s.name, probe.Name, dns.TypeToString[probe.Type],
				a.Rcode, time.Since(start).Round(time.Millisecond))
			return nil
		}
		last = a.String()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s %s with %s within 30 s (last: %s); log:\n%s",
				s.name, probe.Name, dns.TypeToString[probe.Type], dns.RcodeToString[rcode], last, s.log())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *server) stop() {
	if s == nil {
		return
	}
	// No graceful stop: both would wait out health's lameduck.
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// ask sends q to addr and returns the normalized response; one retry on a
// timeout.
func ask(addr string, q Query) Answer {
	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Type)
	m.Question[0].Qclass = q.Class
	m.RecursionDesired = !q.NoRec
	if q.DNSSEC || q.BufSize > 0 {
		size := q.BufSize
		if size == 0 {
			size = 1232
		}
		m.SetEdns0(size, q.DNSSEC)
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if q.TCP {
		c.Net = "tcp"
	}
	var r *dns.Msg
	var err error
	for range 2 {
		r, _, err = c.Exchange(m, addr)
		var ne net.Error
		if err == nil || !(errors.As(err, &ne) && ne.Timeout()) {
			break
		}
	}
	if err != nil {
		return Answer{Err: err.Error()}
	}
	return normalize(r, q.AnyTTL)
}
