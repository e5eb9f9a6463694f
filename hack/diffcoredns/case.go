package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Case is one .case file: a Corefile, the Kubernetes objects and upstream
// records it serves, and the queries asked of both servers. The format is
// described in README.md.
type Case struct {
	Name        string
	File        string
	Description string
	Corefile    string
	Objects     string            // multi-document YAML, placeholders unexpanded
	Files       map[string]string // name → contents, written to {DIR}
	Upstream    []string          // RR lines, placeholders unexpanded
	Probe       *Query            // the readiness probe; nil: the default
	ProbeRcode  int
	Queries     []Query
	Differences map[string]string // query line → reason
}

// Query is one line of the queries section.
type Query struct {
	Line    string // as written, single-spaced
	Key     string // Line, then " #2", " #3"… for its repetitions: the key of the differences section
	Name    string // placeholders unexpanded
	Type    uint16
	Class   uint16
	TCP     bool
	DNSSEC  bool
	BufSize uint16 // 0: no EDNS unless DNSSEC (then 1232)
	NoRec   bool
	AnyTTL  bool
}

var (
	sectionRE = regexp.MustCompile(`^-- (.+) --$`)
	repeatRE  = regexp.MustCompile(`^(.*\S)\s+#([2-9]|[1-9][0-9]+)$`)
)

// LoadCases reads every *.case file in dir, in name order.
func LoadCases(dir string) ([]*Case, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.case"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no *.case files in %s", dir)
	}
	sort.Strings(paths)
	var cases []*Case
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		c, err := ParseCase(p, string(data))
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// ParseCase parses the text of a case file; file names it in errors and
// gives the case its name (the base name without .case).
func ParseCase(file, text string) (*Case, error) {
	c := &Case{
		Name:        strings.TrimSuffix(filepath.Base(file), ".case"),
		File:        file,
		Files:       map[string]string{},
		Differences: map[string]string{},
		ProbeRcode:  dns.RcodeSuccess,
	}
	type section struct {
		name  string
		line  int
		lines []string
	}
	var secs []*section
	var desc []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if m := sectionRE.FindStringSubmatch(l); m != nil {
			secs = append(secs, &section{name: m[1], line: n})
			continue
		}
		if len(secs) == 0 {
			desc = append(desc, strings.TrimSpace(strings.TrimPrefix(l, "#")))
			continue
		}
		s := secs[len(secs)-1]
		s.lines = append(s.lines, l)
	}
	c.Description = strings.TrimSpace(strings.Join(desc, "\n"))
	errf := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	for _, s := range secs {
		if seen[s.name] {
			return nil, errf(s.line, "section %q appears twice", s.name)
		}
		seen[s.name] = true
		body := strings.Join(s.lines, "\n")
		// content lines: trimmed, without blank lines and # comments.
		type content struct {
			n    int
			text string
		}
		var contents []content
		for i, l := range s.lines {
			t := strings.TrimSpace(l)
			if t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			contents = append(contents, content{s.line + 1 + i, t})
		}
		switch {
		case s.name == "Corefile":
			c.Corefile = strings.TrimSpace(body) + "\n"
		case s.name == "objects":
			c.Objects = body
		case strings.HasPrefix(s.name, "files/"):
			name := strings.TrimPrefix(s.name, "files/")
			if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
				return nil, errf(s.line, "files/NAME: NAME must be a plain file name, not %q", name)
			}
			c.Files[name] = strings.TrimRight(body, "\n") + "\n"
		case s.name == "upstream":
			for _, l := range contents {
				c.Upstream = append(c.Upstream, l.text)
			}
		case s.name == "probe":
			if len(contents) != 1 {
				return nil, errf(s.line, "probe: want one line NAME TYPE [RCODE]")
			}
			f := strings.Fields(contents[0].text)
			rcode := "NOERROR"
			if len(f) == 3 {
				rcode = f[2]
				f = f[:2]
			}
			q, err := ParseQuery(strings.Join(f, " "))
			if err != nil {
				return nil, errf(contents[0].n, "%v", err)
			}
			rc, ok := dns.StringToRcode[strings.ToUpper(rcode)]
			if !ok {
				return nil, errf(contents[0].n, "unknown rcode %q", rcode)
			}
			c.Probe, c.ProbeRcode = &q, rc
		case s.name == "queries":
			seen := map[string]int{}
			for _, l := range contents {
				q, err := ParseQuery(l.text)
				if err != nil {
					return nil, errf(l.n, "%v", err)
				}
				seen[q.Line]++
				q.Key = q.Line
				if n := seen[q.Line]; n > 1 {
					q.Key = fmt.Sprintf("%s #%d", q.Line, n)
				}
				c.Queries = append(c.Queries, q)
			}
		case s.name == "differences":
			for _, l := range contents {
				q, reason, ok := strings.Cut(l.text, " -> ")
				if !ok || strings.TrimSpace(reason) == "" {
					return nil, errf(l.n, "differences: want QUERY LINE -> REASON")
				}
				q = strings.TrimSpace(q)
				rep := ""
				if m := repeatRE.FindStringSubmatch(q); m != nil {
					q, rep = m[1], " #"+m[2]
				}
				pq, err := ParseQuery(q)
				if err != nil {
					return nil, errf(l.n, "%v", err)
				}
				c.Differences[pq.Line+rep] = strings.TrimSpace(reason)
			}
		default:
			return nil, errf(s.line, "unknown section %q (want Corefile, objects, files/NAME, upstream, probe, queries, differences)", s.name)
		}
	}
	if c.Corefile == "" {
		return nil, fmt.Errorf("%s: no Corefile section", file)
	}
	if len(c.Queries) == 0 {
		return nil, fmt.Errorf("%s: no queries", file)
	}
	lines := map[string]bool{}
	for _, q := range c.Queries {
		lines[q.Key] = true
	}
	for l := range c.Differences {
		if !lines[l] {
			return nil, fmt.Errorf("%s: differences: %q is not a query of this case", file, l)
		}
	}
	return c, nil
}

// ParseQuery parses `NAME TYPE [CLASS] [+tcp] [+dnssec] [+bufsize=N]
// [+norec] [+anyttl]`. Its Line is the canonical form: single spaces.
func ParseQuery(line string) (Query, error) {
	f := strings.Fields(line)
	q := Query{Line: strings.Join(f, " "), Class: dns.ClassINET}
	if len(f) < 2 {
		return q, fmt.Errorf("query %q: want NAME TYPE [CLASS] [+OPTION...]", line)
	}
	q.Name = f[0]
	t, ok := dns.StringToType[strings.ToUpper(f[1])]
	if !ok {
		return q, fmt.Errorf("query %q: unknown type %q", line, f[1])
	}
	q.Type = t
	rest := f[2:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "+") {
		cl, ok := dns.StringToClass[strings.ToUpper(rest[0])]
		if !ok {
			return q, fmt.Errorf("query %q: unknown class %q", line, rest[0])
		}
		q.Class = cl
		rest = rest[1:]
	}
	for _, o := range rest {
		switch {
		case o == "+tcp":
			q.TCP = true
		case o == "+dnssec":
			q.DNSSEC = true
		case o == "+norec":
			q.NoRec = true
		case o == "+anyttl":
			q.AnyTTL = true
		case strings.HasPrefix(o, "+bufsize="):
			n, err := strconv.ParseUint(strings.TrimPrefix(o, "+bufsize="), 10, 16)
			if err != nil || n < 1 {
				return q, fmt.Errorf("query %q: bad %s", line, o)
			}
			q.BufSize = uint16(n)
		default:
			return q, fmt.Errorf("query %q: unknown option %q (want +tcp +dnssec +bufsize=N +norec +anyttl)", line, o)
		}
	}
	return q, nil
}

var placeholderRE = regexp.MustCompile(`\{([A-Z][A-Z0-9_]*)(?::([^{}]*))?\}`)

// expand replaces placeholders innermost first: {NAME} from vars, and
// {FUNC:ARG} from funcs. A placeholder with no value is an error.
func expand(s string, vars map[string]string, funcs map[string]func(string) (string, error)) (string, error) {
	for range 10 {
		var err error
		out := placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
			sm := placeholderRE.FindStringSubmatch(m)
			name, arg := sm[1], sm[2]
			if strings.Contains(m, ":") {
				if f, ok := funcs[name]; ok {
					v, ferr := f(arg)
					if ferr != nil && err == nil {
						err = fmt.Errorf("%s: %w", m, ferr)
					}
					return v
				}
			} else if v, ok := vars[name]; ok {
				return v
			}
			if err == nil {
				err = fmt.Errorf("unknown placeholder %s", m)
			}
			return m
		})
		if err != nil {
			return "", err
		}
		if out == s {
			return out, nil
		}
		s = out
	}
	return s, nil
}

// reverseName is the PTR name of an IP address.
func reverseName(ip string) (string, error) {
	if net.ParseIP(ip) == nil {
		return "", fmt.Errorf("%q is not an IP address", ip)
	}
	return dns.ReverseAddr(ip)
}

// coreDNSCorefile adds `bind 127.0.0.1` to every server block: svcdisc's
// --dns-addr 127.0.0.1:PORT is the same thing (it listens there only, and
// gives that address to ns.dns.<zone>), and svcdisc has no bind directive.
func coreDNSCorefile(corefile string) string {
	var b strings.Builder
	depth := 0
	for _, l := range strings.SplitAfter(corefile, "\n") {
		t := strings.TrimSpace(l)
		b.WriteString(l)
		if strings.HasPrefix(t, "#") {
			continue
		}
		opens, closes := strings.Count(t, "{"), strings.Count(t, "}")
		if depth == 0 && opens > 0 && strings.HasSuffix(t, "{") {
			if !strings.HasSuffix(l, "\n") {
				b.WriteString("\n")
			}
			b.WriteString("    bind 127.0.0.1\n")
		}
		depth += opens - closes
	}
	return b.String()
}
