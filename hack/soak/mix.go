package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The classes of query in the mix, each with the one response code every
// query of the class must get.
const (
	classA        = "cluster-a"   // A of a ClusterIP Service: NOERROR
	classSRV      = "cluster-srv" // SRV of a named port: NOERROR
	classSearchNX = "search-nx"   // ndots:5 search-path expansion: NXDOMAIN
	classExternal = "external"    // forwarded to the upstream: NOERROR
)

// sourceFiles are dnsbench's query files, in the order the mix draws from
// them when their shares tie.
var sourceFiles = []string{"a", "nxdomain", "srv", "external"}

const defaultShares = "a=40,nxdomain=30,srv=10,external=20"

// query is one line of a dnsperf query file with what it should get.
type query struct {
	Name, Type    string
	Class, Expect string
}

func (q query) key() string { return q.Name + " " + q.Type }

// classify says what a line of dnsbench's query file src asks for. In
// nxdomain.txt (what a pod's resolver sends with ndots:5 and the search
// path NS.svc.ZONE svc.ZONE ZONE), the lines that name a Service,
// <svc>.<ns>.svc.<zone>, are found; every other line is a search expansion
// that does not exist.
func classify(src, name, typ, zone string) query {
	q := query{Name: name, Type: typ, Expect: "NOERROR"}
	switch src {
	case "a":
		q.Class = classA
	case "srv":
		q.Class = classSRV
	case "external":
		q.Class = classExternal
	case "nxdomain":
		if isServiceName(name, zone) {
			q.Class = classA
		} else {
			q.Class, q.Expect = classSearchNX, "NXDOMAIN"
		}
	}
	return q
}

// isServiceName reports whether name is <svc>.<ns>.svc.<zone>.
func isServiceName(name, zone string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	zone = strings.ToLower(strings.TrimSuffix(zone, "."))
	rest, ok := strings.CutSuffix(name, ".svc."+zone)
	if !ok {
		return false
	}
	svc, ns, ok := strings.Cut(rest, ".")
	return ok && svc != "" && ns != "" && !strings.Contains(ns, ".")
}

// parseShares reads "a=40,nxdomain=30,...": the weight of each source file.
func parseShares(s string) (map[string]int, error) {
	shares := map[string]int{}
	total := 0
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, v, ok := strings.Cut(f, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("share %q: want NAME=WEIGHT, a whole number", f)
		}
		known := false
		for _, src := range sourceFiles {
			known = known || src == name
		}
		if !known {
			return nil, fmt.Errorf("share %q: no query file %s (want one of %s)", f, name, strings.Join(sourceFiles, ", "))
		}
		shares[name] = n
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("shares %q: no positive weight", s)
	}
	return shares, nil
}

// readQueries reads a dnsperf query file: "NAME TYPE" a line.
func readQueries(r io.Reader, src, zone string) ([]query, error) {
	var out []query
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want NAME TYPE, got %q", n, sc.Text())
		}
		out = append(out, classify(src, f[0], f[1], zone))
	}
	return out, sc.Err()
}

// mix interleaves the sources' lines by weight, each source in its own
// order (so a search-path lookup's expansions stay in sequence) and from
// its start again when it runs out, lines in all. The interleaving is
// smooth: after every line, each source has given its share to within one
// line.
func mix(sources map[string][]query, shares map[string]int, lines int) []query {
	type src struct {
		qs            []query
		weight, taken int
	}
	var srcs []*src
	for _, name := range sourceFiles {
		if shares[name] > 0 && len(sources[name]) > 0 {
			srcs = append(srcs, &src{qs: sources[name], weight: shares[name]})
		}
	}
	if len(srcs) == 0 {
		return nil
	}
	out := make([]query, 0, lines)
	for range lines {
		// The source furthest behind its share: least (taken+1)/weight.
		best := srcs[0]
		for _, s := range srcs[1:] {
			if (s.taken+1)*best.weight < (best.taken+1)*s.weight {
				best = s
			}
		}
		out = append(out, best.qs[best.taken%len(best.qs)])
		best.taken++
	}
	return out
}

func runMix(args []string) error {
	fs := flag.NewFlagSet("mix", flag.ExitOnError)
	dir := fs.String("queries", "", "dnsbench's queries directory: a.txt, nxdomain.txt, srv.txt, external.txt (required)")
	zone := fs.String("zone", "cluster.local", "cluster domain")
	out := fs.String("out", "", "mixed dnsperf query file to write (required)")
	classes := fs.String("classes", "", "TSV to write: name, type, class, expected rcode of every distinct query (required)")
	lines := fs.Int("lines", 100000, "lines of the mixed file")
	sharesFlag := fs.String("shares", defaultShares, "weight of each query file in the mix")
	fs.Parse(args)
	if *dir == "" || *out == "" || *classes == "" {
		return fmt.Errorf("mix: -queries, -out and -classes are required")
	}
	if *lines < 1 {
		return fmt.Errorf("mix: -lines must be positive")
	}
	shares, err := parseShares(*sharesFlag)
	if err != nil {
		return fmt.Errorf("mix: %w", err)
	}
	sources := map[string][]query{}
	for _, name := range sourceFiles {
		if shares[name] == 0 {
			continue
		}
		path := filepath.Join(*dir, name+".txt")
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("mix: %w", err)
		}
		qs, err := readQueries(f, name, *zone)
		f.Close()
		if err != nil {
			return fmt.Errorf("mix: %s: %w", path, err)
		}
		if len(qs) == 0 {
			return fmt.Errorf("mix: %s has no queries", path)
		}
		sources[name] = qs
	}
	mixed := mix(sources, shares, *lines)
	expect := map[string]query{}
	count := map[string]int{}
	for _, q := range mixed {
		if prev, ok := expect[q.key()]; ok && prev.Expect != q.Expect {
			return fmt.Errorf("mix: %s is expected to get both %s and %s", q.key(), prev.Expect, q.Expect)
		}
		expect[q.key()] = q
		count[q.Class]++
	}
	if err := writeLines(*out, len(mixed), func(w *bufio.Writer, i int) {
		fmt.Fprintf(w, "%s %s\n", mixed[i].Name, mixed[i].Type)
	}); err != nil {
		return fmt.Errorf("mix: %w", err)
	}
	keys := make([]string, 0, len(expect))
	for k := range expect {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if err := writeLines(*classes, len(keys), func(w *bufio.Writer, i int) {
		q := expect[keys[i]]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", q.Name, q.Type, q.Class, q.Expect)
	}); err != nil {
		return fmt.Errorf("mix: %w", err)
	}
	for _, c := range []string{classA, classSearchNX, classSRV, classExternal} {
		fmt.Printf("%s\t%d\t%.1f%%\n", c, count[c], 100*float64(count[c])/float64(len(mixed)))
	}
	return nil
}

// writeLines writes n lines to path through a buffer.
func writeLines(path string, n int, line func(w *bufio.Writer, i int)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	for i := range n {
		line(w, i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
