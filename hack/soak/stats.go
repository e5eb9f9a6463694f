package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// hist is a latency histogram: 1 µs buckets up to 100 ms, 1 ms buckets
// above (dnsperf prints latencies in µs). Lost queries count as slower
// than any answer.
type hist struct {
	fine   [100000]uint64 // µs
	coarse []uint64       // ms, from 100 ms on
	n      uint64         // answered
	lost   uint64
	max    int64 // µs
}

func (h *hist) add(us int64) {
	if us < 0 {
		us = 0
	}
	h.n++
	h.max = max(h.max, us)
	if us < int64(len(h.fine)) {
		h.fine[us]++
		return
	}
	ms := int(us/1000) - len(h.fine)/1000
	for len(h.coarse) <= ms {
		h.coarse = append(h.coarse, 0)
	}
	h.coarse[ms]++
}

func (h *hist) merge(o *hist) {
	for i, c := range o.fine {
		h.fine[i] += c
	}
	for len(h.coarse) < len(o.coarse) {
		h.coarse = append(h.coarse, 0)
	}
	for i, c := range o.coarse {
		h.coarse[i] += c
	}
	h.n += o.n
	h.lost += o.lost
	h.max = max(h.max, o.max)
}

// percentile returns the p-quantile (0 < p <= 1) in µs, or -1 when it
// falls among the lost queries, or when there is nothing at all.
func (h *hist) percentile(p float64) int64 {
	total := h.n + h.lost
	if total == 0 {
		return -1
	}
	k := uint64(math.Ceil(p * float64(total)))
	k = max(k, 1)
	if k > h.n {
		return -1
	}
	var cum uint64
	for us, c := range h.fine {
		if cum += c; cum >= k {
			return int64(us)
		}
	}
	for ms, c := range h.coarse {
		if cum += c; cum >= k {
			return int64(ms+len(h.fine)/1000) * 1000
		}
	}
	return h.max
}

// classStats counts one class of query's outcomes.
type classStats struct {
	expect     string
	answered   uint64
	lost       uint64
	unexpected uint64
	rcodes     map[string]uint64
}

// interval is the responses between two of dnsperf's -S markers.
type interval struct {
	hist
	qps        string // what dnsperf's marker said
	unexpected uint64
}

// stats reads dnsperf -v -S output.
type stats struct {
	expect    map[string]query // by lower-cased "name type"
	classes   map[string]*classStats
	total     hist
	intervals []*interval
	// cur is the interval being read; prev the one before it, kept open
	// so that a short tail after the last marker (the answers to the last
	// queries sent) can be folded into it.
	cur, prev  *interval
	unexpected uint64
	passthru   io.Writer
	badLines   int
}

func newStats(expect map[string]query, passthru io.Writer) *stats {
	return &stats{expect: expect, classes: map[string]*classStats{}, cur: &interval{}, passthru: passthru}
}

func (s *stats) class(q query) *classStats {
	c := s.classes[q.Class]
	if c == nil {
		c = &classStats{expect: q.Expect, rcodes: map[string]uint64{}}
		s.classes[q.Class] = c
	}
	return c
}

// line takes one line of dnsperf's output.
func (s *stats) line(l string) {
	if rest, ok := strings.CutPrefix(l, "> "); ok {
		s.response(rest)
		return
	}
	if qps, ok := marker(l); ok {
		s.cur.qps = qps
		s.closeInterval()
		return
	}
	if s.passthru != nil {
		fmt.Fprintln(s.passthru, l)
	}
}

// marker recognises a -S line, "1795651364.841333: 1999.714184".
func marker(l string) (qps string, ok bool) {
	ts, qps, ok := strings.Cut(l, ": ")
	if !ok {
		return "", false
	}
	if _, err := strconv.ParseFloat(ts, 64); err != nil || !strings.Contains(ts, ".") {
		return "", false
	}
	if _, err := strconv.ParseFloat(qps, 64); err != nil {
		return "", false
	}
	return qps, true
}

// response takes "RCODE NAME TYPE SECONDS", or "T NAME TYPE" for a query
// that timed out.
func (s *stats) response(l string) {
	f := strings.Fields(l)
	if len(f) < 3 {
		s.badLines++
		return
	}
	key := strings.ToLower(f[1] + " " + f[2])
	q, ok := s.expect[key]
	if !ok {
		q = query{Class: "unknown"}
	}
	c := s.class(q)
	if f[0] == "T" && len(f) == 3 {
		c.lost++
		s.cur.lost++
		s.total.lost++
		return
	}
	if len(f) != 4 {
		s.badLines++
		return
	}
	sec, err := strconv.ParseFloat(f[3], 64)
	if err != nil {
		s.badLines++
		return
	}
	us := int64(math.Round(sec * 1e6))
	c.answered++
	c.rcodes[f[0]]++
	if f[0] != q.Expect {
		c.unexpected++
		s.cur.unexpected++
		s.unexpected++
	}
	s.cur.add(us)
	s.total.add(us)
}

func (s *stats) closeInterval() {
	if s.prev != nil {
		s.intervals = append(s.intervals, s.prev)
	}
	s.prev, s.cur = s.cur, &interval{}
}

// finish folds a tail of fewer than 10% of the previous interval's queries
// into it and closes the rest.
func (s *stats) finish() {
	tail := s.cur.n + s.cur.lost
	if s.prev != nil && tail*10 < s.prev.n+s.prev.lost {
		s.prev.merge(&s.cur.hist)
		s.prev.unexpected += s.cur.unexpected
		s.cur = &interval{}
	}
	if s.prev != nil {
		s.intervals = append(s.intervals, s.prev)
		s.prev = nil
	}
	if s.cur.n+s.cur.lost > 0 {
		s.cur.qps = "-"
		s.intervals = append(s.intervals, s.cur)
	}
	s.cur = &interval{}
}

func us(v int64) string {
	if v < 0 {
		return "lost"
	}
	return strconv.FormatInt(v, 10)
}

// write writes intervals.tsv, classes.tsv and summary.env into dir.
func (s *stats) write(dir string, every int) error {
	var b strings.Builder
	b.WriteString("interval\tstart_s\tend_s\tdnsperf_qps\tanswered\tlost\tunexpected_rcode\tp50_us\tp99_us\tp999_us\tmax_us\n")
	for i, iv := range s.intervals {
		end := strconv.Itoa((i + 1) * every)
		if iv.qps == "-" || i == len(s.intervals)-1 {
			end = "end"
		}
		fmt.Fprintf(&b, "%d\t%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n", i+1, i*every, end, iv.qps, iv.n, iv.lost,
			iv.unexpected, us(iv.percentile(0.5)), us(iv.percentile(0.99)), us(iv.percentile(0.999)), iv.max)
	}
	if err := os.WriteFile(filepath.Join(dir, "intervals.tsv"), []byte(b.String()), 0o644); err != nil {
		return err
	}

	b.Reset()
	b.WriteString("class\texpected_rcode\tsent\tanswered\tlost\tunexpected_rcode\trcodes\n")
	names := make([]string, 0, len(s.classes))
	for n := range s.classes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := s.classes[n]
		var rc []string
		for r := range c.rcodes {
			rc = append(rc, r)
		}
		sort.Slice(rc, func(i, j int) bool {
			return c.rcodes[rc[i]] > c.rcodes[rc[j]] || c.rcodes[rc[i]] == c.rcodes[rc[j]] && rc[i] < rc[j]
		})
		var parts []string
		for _, r := range rc {
			parts = append(parts, fmt.Sprintf("%s=%d", r, c.rcodes[r]))
		}
		expect := c.expect
		if expect == "" {
			expect = "-"
		}
		fmt.Fprintf(&b, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", n, expect, c.answered+c.lost, c.answered, c.lost, c.unexpected, strings.Join(parts, " "))
	}
	if err := os.WriteFile(filepath.Join(dir, "classes.tsv"), []byte(b.String()), 0o644); err != nil {
		return err
	}

	b.Reset()
	t := &s.total
	fmt.Fprintf(&b, "SENT=%d\nANSWERED=%d\nLOST=%d\nUNEXPECTED=%d\nP50_US=%s\nP99_US=%s\nP999_US=%s\nMAX_US=%d\nINTERVALS=%d\nBAD_LINES=%d\n",
		t.n+t.lost, t.n, t.lost, s.unexpected, us(t.percentile(0.5)), us(t.percentile(0.99)), us(t.percentile(0.999)), t.max,
		len(s.intervals), s.badLines)
	return os.WriteFile(filepath.Join(dir, "summary.env"), []byte(b.String()), 0o644)
}

// readClasses reads the TSV that mix writes.
func readClasses(r io.Reader) (map[string]query, error) {
	out := map[string]query{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d: want name, type, class, expected rcode", n)
		}
		q := query{Name: f[0], Type: f[1], Class: f[2], Expect: f[3]}
		out[strings.ToLower(q.key())] = q
	}
	return out, sc.Err()
}

func runStats(args []string, in io.Reader) error {
	fs := flag.NewFlagSet("stats", flag.ExitOnError)
	classes := fs.String("classes", "", "the classes TSV that mix wrote (required)")
	out := fs.String("out", "", "directory for intervals.tsv, classes.tsv, summary.env (required)")
	every := fs.Int("interval", 30, "dnsperf's -S: seconds between interval markers")
	passthru := fs.String("passthrough", "", "file for dnsperf's other output (its statistics); default stdout")
	fs.Parse(args)
	if *classes == "" || *out == "" {
		return fmt.Errorf("stats: -classes and -out are required")
	}
	if *every < 1 {
		return fmt.Errorf("stats: -interval must be positive")
	}
	f, err := os.Open(*classes)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	expect, err := readClasses(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("stats: %s: %w", *classes, err)
	}
	var pw io.Writer = os.Stdout
	if *passthru != "" {
		pf, err := os.Create(*passthru)
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		defer pf.Close()
		bw := bufio.NewWriter(pf)
		defer bw.Flush()
		pw = bw
	}
	s := newStats(expect, pw)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stats: reading dnsperf output: %w", err)
	}
	s.finish()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if err := s.write(*out, *every); err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	return nil
}
