package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// probe asks addr for name and type over UDP (TCP when truncated) and
// reports whether the answer holds at least one record of that type.
func probe(addr, name, typ string, timeout time.Duration) error {
	t, ok := dns.StringToType[strings.ToUpper(typ)]
	if !ok {
		return fmt.Errorf("unknown type %q", typ)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), t)
	m.SetEdns0(4096, false)
	c := &dns.Client{Timeout: timeout}
	r, _, err := c.Exchange(m, addr)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.Exchange(m, addr)
	}
	if err != nil {
		return err
	}
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == t {
			return nil
		}
	}
	return fmt.Errorf("%s %s: %s with no %s record", name, typ, dns.RcodeToString[r.Rcode], typ)
}

func runProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	addr := fs.String("addr", "", "server, HOST:PORT (required)")
	name := fs.String("name", "", "query name (required)")
	typ := fs.String("type", "A", "query type")
	timeout := fs.Duration("timeout", time.Second, "how long to wait for the answer")
	fs.Parse(args)
	if *addr == "" || *name == "" {
		return fmt.Errorf("probe: -addr and -name are required")
	}
	return probe(*addr, *name, *typ, *timeout)
}

// goroutineTotal reads the total from the first line of a pprof goroutine
// profile in text form (?debug=1): "goroutine profile: total 16".
func goroutineTotal(r io.Reader) (int, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return 0, fmt.Errorf("empty goroutine profile")
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("not a goroutine profile: %q", strings.TrimSpace(line))
	}
	return strconv.Atoi(rest)
}

func runGoroutines(args []string) error {
	fs := flag.NewFlagSet("goroutines", flag.ExitOnError)
	url := fs.String("url", "", "the goroutine profile, e.g. http://127.0.0.1:6060/debug/pprof/goroutine?debug=1 (required)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for it")
	fs.Parse(args)
	if *url == "" {
		return fmt.Errorf("goroutines: -url is required")
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get(*url)
	if err != nil {
		return fmt.Errorf("goroutines: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("goroutines: %s: %s", *url, resp.Status)
	}
	n, err := goroutineTotal(resp.Body)
	if err != nil {
		return fmt.Errorf("goroutines: %w", err)
	}
	fmt.Println(n)
	return nil
}
