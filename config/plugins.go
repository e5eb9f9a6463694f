package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Health is a health directive: `health [ADDR] { lameduck DURATION }`.
type Health struct {
	Addr     string // default ":8080"
	Lameduck time.Duration
}

// RateLimit is a ratelimit directive: response rate limiting per client
// prefix, over UDP only (a TCP client has proved its address). It is off
// unless the directive is present:
//
//	ratelimit RATE {
//	    burst N
//	    ipv4_prefix LEN
//	    ipv6_prefix LEN
//	    slip N
//	    exempt CIDR…
//	}
//
// RATE is the responses per second each client prefix gets (1 to
// 1000000); burst is how many a quiet prefix may get at once (default
// RATE); clients are grouped by ipv4_prefix (1 to 32, default 24) and
// ipv6_prefix (1 to 128, default 56) bits. Every slip-th limited query
// gets an empty reply with TC set, so that a real client retries over TCP,
// and the others none (0 to 10, default 2; 0 drops every limited query).
// exempt lists prefixes or addresses never limited; it may be repeated.
type RateLimit struct {
	Rate, Burst            int
	IPv4Prefix, IPv6Prefix int
	Slip                   int
	Exempt                 []netip.Prefix
	Line                   int
}

// Reload is a reload directive: `reload [INTERVAL [JITTER]]`.
type Reload struct {
	Interval, Jitter time.Duration // defaults 30s and 15s
}

// Default addresses and sizes, as in CoreDNS.
const (
	DefaultHealthAddr     = ":8080"
	DefaultPrometheusAddr = ":9153"
	// DefaultPprofAddr is CoreDNS's pprof default: loopback only, since
	// profiles reveal the process.
	DefaultPprofAddr = "localhost:6053"
	DefaultCacheCap  = 9984
)

// directive is one use of a directive split into its arguments and the
// options of its block.
type directive struct {
	name  string
	line  int
	args  []string
	block []option
}

type option struct {
	name string
	line int
	args []string
}

// split cuts an occurrence into arguments and block options: arguments are
// the words on the directive's line before "{", each option is a line of
// the block.
func (p *parser) split(o occurrence) (directive, error) {
	toks := o.tokens
	d := directive{name: toks[0].Text, line: toks[0].Line}
	i := 1
	for ; i < len(toks) && toks[i].Text != "{"; i++ {
		if toks[i].Text == "}" {
			return d, errorf(p.filename, toks[i].Line, `%s: unexpected "}"`, d.name)
		}
		d.args = append(d.args, toks[i].Text)
	}
	if i == len(toks) {
		return d, nil
	}
	open := toks[i].Line
	i++
	for i < len(toks) {
		t := toks[i]
		if t.Text == "}" {
			if i != len(toks)-1 {
				return d, errorf(p.filename, toks[i+1].Line, "%s: unexpected %q after the block", d.name, toks[i+1].Text)
			}
			return d, nil
		}
		opt := option{name: t.Text, line: t.Line}
		for i++; i < len(toks) && toks[i].Line == t.Line && toks[i].Text != "}"; i++ {
			if toks[i].Text == "{" {
				return d, errorf(p.filename, toks[i].Line, "%s: option %q takes no block", d.name, opt.name)
			}
			opt.args = append(opt.args, toks[i].Text)
		}
		// A "}" ending the option's line closes the block, as in the
		// one-line `template ANY AAAA { rcode NOERROR }` CoreDNS accepts.
		d.block = append(d.block, opt)
	}
	return d, errorf(p.filename, open, `%s: missing "}"`, d.name)
}

func (p *parser) duration(line int, what, s string, min time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil && allDigits(s) && s != "" {
		n, _ := strconv.Atoi(s)
		d, err = time.Duration(n)*time.Second, nil // CoreDNS takes plain seconds too
	}
	if err != nil || d < min {
		return 0, errorf(p.filename, line, "%s: %q is not a duration of at least %s", what, s, min)
	}
	return d, nil
}

func (p *parser) count(line int, what, s string, min int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || !allDigits(s) || n < min {
		return 0, errorf(p.filename, line, "%s: %q is not a number of at least %d", what, s, min)
	}
	return n, nil
}

func (p *parser) between(line int, what, s string, min, max int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || !allDigits(s) || n < min || n > max {
		return 0, errorf(p.filename, line, "%s: %q is not a number between %d and %d", what, s, min, max)
	}
	return n, nil
}

func (p *parser) wantArgs(o option, lo, hi int) error {
	if len(o.args) < lo || len(o.args) > hi {
		if lo == hi {
			return errorf(p.filename, o.line, "%s: want %d argument(s), got %d", o.name, lo, len(o.args))
		}
		return errorf(p.filename, o.line, "%s: want %d to %d arguments, got %d", o.name, lo, hi, len(o.args))
	}
	return nil
}

// health parses `health [ADDR] { lameduck DURATION }`.
func (p *parser) health(d directive) (*Health, error) {
	h := &Health{Addr: DefaultHealthAddr}
	if len(d.args) > 1 {
		return nil, errorf(p.filename, d.line, "health: want at most 1 argument (an address), got %d", len(d.args))
	}
	if len(d.args) == 1 {
		if err := p.hostPort(d.line, "health", d.args[0]); err != nil {
			return nil, err
		}
		h.Addr = d.args[0]
	}
	for _, o := range d.block {
		if o.name != "lameduck" {
			return nil, errorf(p.filename, o.line, "health: unknown option %q", o.name)
		}
		if err := p.wantArgs(o, 1, 1); err != nil {
			return nil, err
		}
		var err error
		if h.Lameduck, err = p.duration(o.line, o.name, o.args[0], 0); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (p *parser) hostPort(line int, what, addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || !allDigits(port) || port == "" {
		return errorf(p.filename, line, "%s: %q is not HOST:PORT", what, addr)
	}
	return nil
}

// addrOnly parses a directive taking at most an address and no block:
// ready (and pprof).
func (p *parser) addrOnly(d directive, def string) (string, error) {
	if len(d.block) > 0 {
		return "", errorf(p.filename, d.block[0].line, "%s: takes no block", d.name)
	}
	switch len(d.args) {
	case 0:
		return def, nil
	case 1:
		return d.args[0], p.hostPort(d.line, d.name, d.args[0])
	}
	return "", errorf(p.filename, d.line, "%s: want at most 1 argument (an address), got %d", d.name, len(d.args))
}

// Bounds of the ratelimit directive's numbers; maxRateLimit keeps the
// limiter's arithmetic in range.
const (
	maxRateLimit = 1_000_000
	maxSlip      = 10
)

// ratelimit parses `ratelimit RATE { burst N; ipv4_prefix LEN;
// ipv6_prefix LEN; slip N; exempt CIDR… }`, described at RateLimit.
func (p *parser) ratelimit(d directive) (*RateLimit, error) {
	if len(d.args) != 1 {
		return nil, errorf(p.filename, d.line, "ratelimit: want RATE (responses per second per client prefix), got %d arguments", len(d.args))
	}
	rate, err := p.between(d.line, "ratelimit", d.args[0], 1, maxRateLimit)
	if err != nil {
		return nil, err
	}
	r := &RateLimit{Rate: rate, Burst: rate, IPv4Prefix: 24, IPv6Prefix: 56, Slip: 2, Line: d.line}
	seen := make(map[string]int)
	for _, o := range d.block {
		if prev, ok := seen[o.name]; ok && o.name != "exempt" {
			return nil, errorf(p.filename, o.line, "%s: already set on line %d", o.name, prev)
		}
		seen[o.name] = o.line
		var n *int
		lo, hi := 0, 0
		switch o.name {
		case "burst":
			n, lo, hi = &r.Burst, 1, maxRateLimit
		case "ipv4_prefix":
			n, lo, hi = &r.IPv4Prefix, 1, 32
		case "ipv6_prefix":
			n, lo, hi = &r.IPv6Prefix, 1, 128
		case "slip":
			n, lo, hi = &r.Slip, 0, maxSlip
		case "exempt":
			if len(o.args) == 0 {
				return nil, errorf(p.filename, o.line, "exempt: want at least one CIDR")
			}
			for _, a := range o.args {
				pfx, err := parsePrefix(a)
				if err != nil {
					return nil, errorf(p.filename, o.line, "exempt: %q is not a CIDR or an IP address", a)
				}
				r.Exempt = append(r.Exempt, pfx)
			}
			continue
		default:
			return nil, errorf(p.filename, o.line, "ratelimit: unknown option %q", o.name)
		}
		if err := p.wantArgs(o, 1, 1); err != nil {
			return nil, err
		}
		if *n, err = p.between(o.line, o.name, o.args[0], lo, hi); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// parsePrefix reads a CIDR, or an address as the prefix of that one
// address, with host bits cleared.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has a zone", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return pfx.Masked(), nil
}

// reload parses `reload [INTERVAL [JITTER]]`.
func (p *parser) reload(d directive) (*Reload, error) {
	r := &Reload{Interval: 30 * time.Second, Jitter: 15 * time.Second}
	if len(d.block) > 0 || len(d.args) > 2 {
		return nil, errorf(p.filename, d.line, "reload: want at most INTERVAL and JITTER")
	}
	var err error
	if len(d.args) > 0 {
		if r.Interval, err = p.duration(d.line, "reload", d.args[0], 2*time.Second); err != nil {
			return nil, err
		}
		r.Jitter = r.Interval / 2
	}
	if len(d.args) > 1 {
		if r.Jitter, err = p.duration(d.line, "reload", d.args[1], time.Second); err != nil {
			return nil, err
		}
		if r.Jitter > r.Interval/2 {
			return nil, errorf(p.filename, d.line, "reload: jitter %s is more than half the interval %s", r.Jitter, r.Interval)
		}
	}
	return r, nil
}

func (p *parser) flag(d directive, allowed ...string) error {
	if len(d.block) > 0 {
		return errorf(p.filename, d.block[0].line, "%s: takes no block", d.name)
	}
	if len(d.args) > len(allowed) || len(d.args) == 1 && len(allowed) == 1 && d.args[0] != allowed[0] {
		return errorf(p.filename, d.line, "%s: unexpected argument %q", d.name, strings.Join(d.args, " "))
	}
	return nil
}
