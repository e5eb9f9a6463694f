package clients

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireEnv makes a missing tool or privilege a failure instead of a skip
// (scripts/test.sh exports it).
const requireEnv = "SVCDISC_REQUIRE_CLIENTS"

// The Pod's resolv.conf, as kubelet writes it for a Pod in namespace shop
// with dnsPolicy ClusterFirst, and its variants.
const resolvConf = "search shop.svc.cluster.local svc.cluster.local cluster.local\n" +
	"nameserver 127.0.0.1\n" +
	"options ndots:5\n"

// resolvConfFrom is resolvConf with another nameserver address: on lo,
// the kernel sends a query to a local address from that address, so the
// nameserver chooses the client's source address (autopath's client).
func resolvConfFrom(addr string) string {
	return strings.Replace(resolvConf, "nameserver 127.0.0.1", "nameserver "+addr, 1)
}

var variants = []struct{ name, options string }{
	{"", ""},
	{"use-vc", "options use-vc\n"},
	{"single-request-reopen", "options single-request-reopen\n"},
}

// lookup is one thing a client resolves.
type lookup struct {
	kind string   // host, addr or srv
	name string   // as the application writes it
	want []string // the answer, sorted: addresses, names, or "target port"
	// fail: the lookup must fail (a name that does not exist).
	fail bool
	// outside: the ExternalName to a name outside the cluster (issue 13 §1).
	outside bool
}

var lookups = []lookup{
	{kind: "host", name: "web", want: []string{"10.96.0.10"}},
	{kind: "host", name: "web.shop", want: []string{"10.96.0.10"}},
	{kind: "host", name: "web.shop.svc", want: []string{"10.96.0.10"}},
	{kind: "host", name: "web.shop.svc.cluster.local", want: []string{"10.96.0.10"}},
	{kind: "host", name: "web.shop.svc.cluster.local.", want: []string{"10.96.0.10"}},
	{kind: "host", name: "db", want: []string{"10.244.2.5", "10.244.3.6"}},
	{kind: "host", name: "inside", want: []string{"10.96.0.10"}},
	{kind: "host", name: "outside", want: []string{"192.0.2.20"}, outside: true},
	{kind: "host", name: "nope", fail: true},
	{kind: "host", name: "www.example.com", want: []string{"192.0.2.80"}},
	{kind: "addr", name: "10.96.0.10", want: []string{"web.shop.svc.cluster.local"}},
	{kind: "srv", name: "_postgres._tcp.db.shop.svc.cluster.local",
		want: []string{"10-244-2-5.db.shop.svc.cluster.local 5432", "10-244-3-6.db.shop.svc.cluster.local 5432"}},
	{kind: "srv", name: "_postgres._tcp.db",
		want: []string{"10-244-2-5.db.shop.svc.cluster.local 5432", "10-244-3-6.db.shop.svc.cluster.local 5432"}},
}

// client runs one lookup in the namespace: the command, and how to read
// its output into the sorted answer.
type client struct {
	name    string
	variant string // resolv.conf options added to the Pod's
	kinds   string // the lookup kinds it can do
	argv    func(l lookup) []string
	parse   func(out string) []string
	env     []string
}

// row is one line of the table.
type row struct {
	client, name string
	queries      []string // what svcdisc logged: "TYPE NAME PROTO RCODE"
	n            int      // queries that reached svcdisc
	answer       string
	status       string // ok, FAIL, skip
}

// ns is the private network and mount namespace: a holder process made by
// unshare, entered with nsenter.
type ns struct {
	pid  int
	dir  string // resolv.conf and nsswitch.conf bound over /etc's
	exe  string // the test binary
	svcd string // svcdisc's log
	// nameserver replaces 127.0.0.1 in the Pod's resolv.conf when set.
	nameserver string
	// requests, when set, counts the queries that reached svcdisc (its
	// metrics); otherwise they are counted from its log. The log also
	// holds the lookups autopath makes for a query.
	requests func(t *testing.T) int
}

func (n *ns) command(ctx context.Context, env []string, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(n.pid), "-n", "-m", "--"}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// run runs argv in the namespace and returns its stdout, stderr and error.
func (n *ns) run(env []string, argv ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := n.command(ctx, env, argv...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// start starts argv in the namespace in the background, output to logf;
// stop (or the test's cleanup) kills it.
func (n *ns) start(t *testing.T, logf string, env []string, argv ...string) (stop func()) {
	t.Helper()
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	cmd := n.command(context.Background(), env, argv...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", argv[0], err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			f.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// setResolvConf writes the Pod's resolv.conf with a variant's options, in
// place: the file is bind-mounted over the namespace's /etc/resolv.conf.
func (n *ns) setResolvConf(t *testing.T, options string) {
	t.Helper()
	conf := resolvConf
	if n.nameserver != "" {
		conf = resolvConfFrom(n.nameserver)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "resolv.conf"), []byte(conf+options), 0o644); err != nil {
		t.Fatal(err)
	}
}

// queries is what svcdisc logged so far, one "TYPE NAME PROTO RCODE" a
// query from a client.
func (n *ns) queries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(n.svcd)
	if err != nil {
		t.Fatal(err)
	}
	var qs []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var rec struct{ Msg string }
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		// "Q REMOTE TYPE NAME PROTO RCODE". svcdisc's wire fast path runs
		// the chain once more, with no remote ("-"), when it tries to keep
		// a cluster reply in wire form: that is no query of the client's.
		f := strings.Fields(rec.Msg)
		if len(f) == 6 && f[0] == "Q" && f[1] != "-" {
			qs = append(qs, strings.Join(f[2:], " "))
		}
	}
	return qs
}

// prerequisites skips the test, or fails it under SVCDISC_REQUIRE_CLIENTS=1,
// when something it needs is missing.
func prerequisites(t *testing.T) {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (for unshare -n -m, port 53 and bind mounts)")
	}
	for _, tool := range []string{"unshare", "nsenter", "ip", "mount", "getent", "musl-gcc", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "real-client test needs " + strings.Join(missing, ", ") +
		" (Debian: util-linux, iproute2, libc-bin, musl-tools; scripts/test.sh installs them)"
	if os.Getenv(requireEnv) == "1" {
		t.Fatal(msg + "; " + requireEnv + "=1")
	}
	t.Skip(msg)
}

// newNS creates the namespace: a holder process in new network and mount
// namespaces, loopback up, the Pod's resolv.conf and an nsswitch.conf of
// "hosts: files dns" bound over /etc's. Everything dies with the holder.
func newNS(t *testing.T) *ns {
	t.Helper()
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("unshare", "-n", "-m", "--propagation", "private", "sleep", "3600")
	holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})
	n := &ns{pid: holder.Process.Pid, dir: dir, exe: exe}
	// unshare execs sleep once the namespaces exist.
	self, _ := os.Readlink("/proc/self/ns/mnt")
	for deadline := time.Now().Add(10 * time.Second); ; {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", n.pid))
		mnt, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.pid))
		if strings.TrimSpace(string(comm)) == "sleep" && mnt != "" && mnt != self {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unshare: no new namespaces after 10s (comm %q)", comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.setResolvConf(t, "")
	if err := os.WriteFile(filepath.Join(dir, "nsswitch.conf"), []byte("hosts: files dns\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"mount", "--bind", filepath.Join(dir, "resolv.conf"), "/etc/resolv.conf"},
		{"mount", "--bind", filepath.Join(dir, "nsswitch.conf"), "/etc/nsswitch.conf"},
	} {
		if out, errOut, err := n.run(nil, argv...); err != nil {
			t.Fatalf("in the namespace: %s: %v\n%s%s", strings.Join(argv, " "), err, out, errOut)
		}
	}
	return n
}

// builds holds svcdisc and the musl client once built: every test of the
// package uses the same two binaries (TestMain removes the directory).
var builds struct {
	sync.Mutex
	dir          string
	svcdisc, gai string
}

// build compiles svcdisc from the tree and the musl client from testdata,
// once for the package; dir is unused since then, kept for the callers.
func build(t *testing.T, _ string) (svcdisc, gai string) {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if builds.svcdisc != "" {
		return builds.svcdisc, builds.gai
	}
	dir, err := os.MkdirTemp("", "svcdisc-clients-")
	if err != nil {
		t.Fatal(err)
	}
	svcdisc, gai = filepath.Join(dir, "svcdisc"), filepath.Join(dir, "gai")
	for _, argv := range [][]string{
		{"go", "build", "-o", svcdisc, "../../cmd/svcdisc"},
		{"musl-gcc", "-static", "-O2", "-o", gai, "testdata/gai.c"},
	} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	builds.dir, builds.svcdisc, builds.gai = dir, svcdisc, gai
	return svcdisc, gai
}

// serveSvcdisc starts svcdisc in the namespace with a Corefile and
// manifests, its log in n.svcd, and waits until it answers a cluster name
// and forwards one. It returns stop.
func serveSvcdisc(t *testing.T, n *ns, svcdisc, logf, corefile, manifests string) (stop func()) {
	t.Helper()
	n.svcd = logf
	stop = n.start(t, n.svcd, nil, svcdisc, "serve", "--log-format", "json",
		"--manifests", manifests, "--conf", corefile)
	for deadline := time.Now().Add(20 * time.Second); ; {
		out, _, err1 := n.run(goEnv, n.exe, "query", "web.shop.svc.cluster.local", "A")
		out2, _, err2 := n.run(goEnv, n.exe, "query", "www.example.com", "A")
		if err1 == nil && err2 == nil && strings.Contains(out, "10.96.0.10") && strings.Contains(out2, "192.0.2.80") {
			return stop
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(n.svcd)
			t.Fatalf("svcdisc not answering after 20s: %q %v / %q %v\nsvcdisc:\n%s", out, err1, out2, err2, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// goEnv makes the test binary the Go client.
var goEnv = []string{roleEnv + "=go", "GODEBUG=netdns=go"}

// setup builds svcdisc and the musl client, makes the namespace and starts
// the upstream in it. testdata is testdata's absolute path (nsenter -m
// starts in /).
func setup(t *testing.T) (n *ns, bin, svcdisc, gai, testdata string) {
	t.Helper()
	prerequisites(t)
	bin = t.TempDir()
	svcdisc, gai = build(t, bin)
	n = newNS(t)
	n.start(t, filepath.Join(bin, "upstream.log"), []string{roleEnv + "=upstream"}, n.exe)
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return n, bin, svcdisc, gai, testdata
}

func TestRealClientsResolveThroughAPodsResolvConf(t *testing.T) {
	start := time.Now()
	n, bin, svcdisc, gai, testdata := setup(t)
	serveSvcdisc(t, n, svcdisc, filepath.Join(bin, "svcdisc.log"),
		filepath.Join(testdata, "Corefile"), filepath.Join(testdata, "cluster.yaml"))
	clients := clientList(n, gai, variants)
	rows := runLookups(t, n, clients, outsideResolved(t, n))
	t.Logf("real clients: %d lookups in %v\n%s\nqueries per lookup (ok: the right answer; fails: failed as it must):\n%s",
		len(rows), time.Since(start).Round(time.Millisecond), table(rows), matrix(clients, rows))
}

// outsideResolved reports whether svcdisc answers the outside ExternalName
// with its target's address (issue 13 §1).
func outsideResolved(t *testing.T, n *ns) bool {
	t.Helper()
	direct, _, _ := n.run(goEnv, n.exe, "query", "outside.shop.svc.cluster.local", "A")
	t.Logf("svcdisc's answer to outside.shop.svc.cluster.local A:\n%s", direct)
	return strings.Contains(direct, "\tA\t192.0.2.20")
}

// clientList is the clients: glibc's getent ahosts and hosts with each
// resolv.conf variant, musl's getaddrinfo and Go's resolver.
func clientList(n *ns, gai string, variants []struct{ name, options string }) []client {
	firstField := func(out string) []string {
		var as []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && !slices.Contains(as, f[0]) {
				as = append(as, f[0])
			}
		}
		return as
	}
	lines := func(out string) []string {
		var as []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l = strings.TrimSuffix(strings.TrimSpace(l), "."); l != "" && !slices.Contains(as, l) {
				as = append(as, l)
			}
		}
		return as
	}
	var clients []client
	for _, v := range variants {
		suffix := ""
		if v.name != "" {
			suffix = " " + v.name
		}
		clients = append(clients,
			client{name: "glibc getent ahosts" + suffix, variant: v.options, kinds: "host",
				argv: func(l lookup) []string { return []string{"getent", "ahosts", l.name} }, parse: firstField},
			client{name: "glibc getent hosts" + suffix, variant: v.options, kinds: "host addr",
				argv: func(l lookup) []string { return []string{"getent", "hosts", l.name} }, parse: firstField},
		)
	}
	return append(clients,
		client{name: "musl getaddrinfo", kinds: "host addr",
			argv: func(l lookup) []string {
				if l.kind == "addr" {
					return []string{gai, "-r", l.name}
				}
				return []string{gai, l.name}
			}, parse: lines},
		client{name: "go (netdns=go)", kinds: "host addr srv", env: goEnv,
			argv: func(l lookup) []string {
				switch l.kind {
				case "addr":
					return []string{n.exe, "addr", l.name}
				case "srv":
					f := strings.SplitN(l.name, ".", 3)
					return []string{n.exe, "srv", strings.TrimPrefix(f[0], "_"), strings.TrimPrefix(f[1], "_"), f[2]}
				}
				return []string{n.exe, "host", l.name}
			}, parse: lines},
	)
}

// runLookups runs every lookup with every client, a subtest each, checks
// the answers and returns the rows.
func runLookups(t *testing.T, n *ns, clients []client, outsideResolved bool) []row {
	t.Helper()
	var rows []row
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			n.setResolvConf(t, c.variant)
			for _, l := range lookups {
				if !strings.Contains(c.kinds, l.kind) {
					continue
				}
				t.Run(l.kind+" "+l.name, func(t *testing.T) {
					before, count := len(n.queries(t)), 0
					if n.requests != nil {
						count = n.requests(t)
					}
					began := time.Now()
					out, errOut, err := n.run(c.env, c.argv(l)...)
					took := time.Since(began)
					qs := n.queries(t)[before:]
					if n.requests != nil {
						count = n.requests(t) - count
					} else {
						count = len(qs)
					}
					r := row{client: c.name, name: l.kind + " " + l.name, queries: qs, n: count, status: "ok"}
					var got []string
					if err == nil {
						got = c.parse(out)
						if l.kind == "addr" && strings.HasPrefix(c.name, "glibc") {
							// getent hosts IP prints "IP NAME".
							got = nil
							for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
								if f := strings.Fields(line); len(f) >= 2 {
									got = append(got, strings.TrimSuffix(f[1], "."))
								}
							}
						}
						slices.Sort(got)
						r.answer = strings.Join(got, " ")
					} else {
						r.answer = "fails: " + failure(err, errOut)
					}
					t.Logf("%s %s: %d queries in %v: %s\n  %s", c.name, l.name, count, took.Round(time.Millisecond), r.answer, strings.Join(qs, "\n  "))
					var problem string
					switch {
					case l.fail && err == nil:
						problem = fmt.Sprintf("resolved to %v, want a failure", got)
					case l.fail:
					case err != nil:
						problem = fmt.Sprintf("failed (%s), want %v", r.answer, l.want)
					case !slices.Equal(got, l.want):
						problem = fmt.Sprintf("answer %v, want %v", got, l.want)
					}
					switch {
					case problem == "":
					case l.outside && !outsideResolved:
						r.status = "skip"
						rows = append(rows, r)
						t.Skipf("issue 13 §1: svcdisc answers the ExternalName's CNAME without the target's A record, so %s %s", c.name, problem)
					default:
						r.status = "FAIL"
						t.Errorf("%s %s: %s\nqueries:\n  %s\nstdout: %s\nstderr: %s", c.name, l.name, problem, strings.Join(qs, "\n  "), out, errOut)
					}
					rows = append(rows, r)
				})
			}
		})
	}
	return rows
}

// failure is a short reason a client failed: its exit status and the first
// line of its stderr.
func failure(err error, stderr string) string {
	var exit *exec.ExitError
	s := err.Error()
	if errors.As(err, &exit) {
		s = "exit " + strconv.Itoa(exit.ExitCode())
	}
	if l, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n"); l != "" {
		s += " (" + l + ")"
	}
	return s
}

// table is the rows as a Markdown table: client × name → queries, answer.
func table(rows []row) string {
	var b strings.Builder
	b.WriteString("| client | lookup | queries | answer | |\n| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | `%s` | %d | %s | %s |\n", r.client, r.name, r.n, r.answer, r.status)
	}
	return b.String()
}

// matrix is the query counts as a Markdown table, a lookup a row and a
// client a column: "N" for the right answer, "N ✗" for a wrong one, "N
// skip" for the issue 13 §1 case.
func matrix(clients []client, rows []row) string {
	var b strings.Builder
	b.WriteString("| lookup |")
	for _, c := range clients {
		b.WriteString(" " + c.name + " |")
	}
	b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(clients)) + "\n")
	for _, l := range lookups {
		name := l.kind + " " + l.name
		fmt.Fprintf(&b, "| `%s` |", name)
		for _, c := range clients {
			cell := "–"
			for _, r := range rows {
				if r.client == c.name && r.name == name {
					cell = strconv.Itoa(r.n)
					switch r.status {
					case "FAIL":
						cell += " ✗"
					case "skip":
						cell += " skip"
					}
				}
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
