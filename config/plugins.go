package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Forward is a forward directive: `forward FROM TO… { … }`.
type Forward struct {
	// From is the zone forwarded, normalised ("." for every name).
	From string
	// To holds upstreams as written: IP, IP:PORT, [IPv6]:PORT, or the path
	// of a resolv.conf file whose nameservers are used.
	To            []string
	Except        []string // zones not forwarded
	Policy        string   // random (default), round_robin, sequential
	ForceTCP      bool
	MaxConcurrent int
	MaxFails      int           // default 2
	HealthCheck   time.Duration // default 0.5s
	Line          int
}

// Cache is a cache directive: `cache [TTL] [ZONES…] { … }`.
type Cache struct {
	Zones                    []string // default: the server block's zones
	SuccessCap, DenialCap    int      // default 9984 each
	SuccessTTL, DenialTTL    time.Duration
	MinSuccessTTL, MinDenial time.Duration
	Prefetch                 int // 0 = off
	PrefetchWindow           time.Duration
	PrefetchPercent          int
	ServeStale               time.Duration // 0 = off
}

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
		if i < len(toks) && toks[i].Text == "}" && toks[i].Line == t.Line {
			return d, errorf(p.filename, t.Line, `%s: option %q: "}" must be on a line of its own`, d.name, opt.name)
		}
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

// forward parses `forward FROM TO… { except ZONES…; force_tcp; policy P;
// max_concurrent N; max_fails N; health_check DURATION }`.
func (p *parser) forward(d directive) (*Forward, error) {
	if len(d.args) < 2 {
		return nil, errorf(p.filename, d.line, "forward: want FROM and at least one upstream")
	}
	from, err := normalizeZone(d.args[0])
	if err != nil {
		return nil, errorf(p.filename, d.line, "forward: %v", err)
	}
	f := &Forward{From: from, Policy: "random", MaxFails: 2, HealthCheck: 500 * time.Millisecond, Line: d.line}
	for _, to := range d.args[1:] {
		if !upstreamSyntax(to) {
			return nil, errorf(p.filename, d.line, "forward: %q is not IP[:PORT] or a resolv.conf path", to)
		}
		f.To = append(f.To, to)
	}
	if len(f.To) > 15 {
		return nil, errorf(p.filename, d.line, "forward: at most 15 upstreams, got %d", len(f.To))
	}
	for _, o := range d.block {
		switch o.name {
		case "except":
			if len(o.args) == 0 {
				return nil, errorf(p.filename, o.line, "except: want at least one zone")
			}
			for _, a := range o.args {
				z, err := normalizeZone(a)
				if err != nil {
					return nil, errorf(p.filename, o.line, "except: %v", err)
				}
				f.Except = append(f.Except, z)
			}
		case "force_tcp":
			if err := p.wantArgs(o, 0, 0); err != nil {
				return nil, err
			}
			f.ForceTCP = true
		case "policy":
			if err := p.wantArgs(o, 1, 1); err != nil {
				return nil, err
			}
			switch o.args[0] {
			case "random", "round_robin", "sequential":
				f.Policy = o.args[0]
			default:
				return nil, errorf(p.filename, o.line, "policy: unknown policy %q: want random, round_robin or sequential", o.args[0])
			}
		case "max_concurrent":
			if err := p.wantArgs(o, 1, 1); err != nil {
				return nil, err
			}
			if f.MaxConcurrent, err = p.count(o.line, o.name, o.args[0], 1); err != nil {
				return nil, err
			}
		case "max_fails":
			if err := p.wantArgs(o, 1, 1); err != nil {
				return nil, err
			}
			if f.MaxFails, err = p.count(o.line, o.name, o.args[0], 0); err != nil {
				return nil, err
			}
		case "health_check":
			if err := p.wantArgs(o, 1, 1); err != nil {
				return nil, err
			}
			if f.HealthCheck, err = p.duration(o.line, o.name, o.args[0], 10*time.Millisecond); err != nil {
				return nil, err
			}
		default:
			return nil, errorf(p.filename, o.line, "forward: unknown option %q", o.name)
		}
	}
	return f, nil
}

func upstreamSyntax(s string) bool {
	if strings.Contains(s, "/") {
		return true // a resolv.conf path
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return true
	}
	return false
}

// cache parses `cache [TTL] [ZONES…] { success CAP [TTL [MINTTL]];
// denial CAP [TTL [MINTTL]]; prefetch AMOUNT [DURATION [PERCENT%]];
// serve_stale [DURATION] }`.
func (p *parser) cache(d directive, serverZones []string) (*Cache, error) {
	c := &Cache{
		SuccessCap: DefaultCacheCap, DenialCap: DefaultCacheCap,
		SuccessTTL: 3600 * time.Second, DenialTTL: 1800 * time.Second,
		MinSuccessTTL: 5 * time.Second, MinDenial: 5 * time.Second,
		PrefetchWindow: time.Minute, PrefetchPercent: 10,
	}
	args := d.args
	if len(args) > 0 && allDigits(args[0]) {
		ttl, err := p.duration(d.line, "cache", args[0], time.Second)
		if err != nil {
			return nil, err
		}
		c.SuccessTTL, c.DenialTTL = ttl, min(ttl, c.DenialTTL)
		args = args[1:]
	}
	for _, a := range args {
		z, err := normalizeZone(a)
		if err != nil {
			return nil, errorf(p.filename, d.line, "cache: %v", err)
		}
		c.Zones = append(c.Zones, z)
	}
	if len(c.Zones) == 0 {
		c.Zones = append([]string(nil), serverZones...)
	}
	var err error
	for _, o := range d.block {
		switch o.name {
		case "success", "denial":
			if err := p.wantArgs(o, 1, 3); err != nil {
				return nil, err
			}
			capacity, err := p.count(o.line, o.name, o.args[0], 1)
			if err != nil {
				return nil, err
			}
			ttl, minTTL := &c.SuccessTTL, &c.MinSuccessTTL
			if o.name == "success" {
				c.SuccessCap = capacity
			} else {
				c.DenialCap = capacity
				ttl, minTTL = &c.DenialTTL, &c.MinDenial
			}
			if len(o.args) > 1 {
				if *ttl, err = p.duration(o.line, o.name, o.args[1], time.Second); err != nil {
					return nil, err
				}
			}
			if len(o.args) > 2 {
				if *minTTL, err = p.duration(o.line, o.name, o.args[2], 0); err != nil {
					return nil, err
				}
			}
		case "prefetch":
			if err := p.wantArgs(o, 1, 3); err != nil {
				return nil, err
			}
			if c.Prefetch, err = p.count(o.line, o.name, o.args[0], 1); err != nil {
				return nil, err
			}
			if len(o.args) > 1 {
				if c.PrefetchWindow, err = p.duration(o.line, o.name, o.args[1], time.Second); err != nil {
					return nil, err
				}
			}
			if len(o.args) > 2 {
				pct, ok := strings.CutSuffix(o.args[2], "%")
				n, err := strconv.Atoi(pct)
				if !ok || err != nil || n < 10 || n > 90 {
					return nil, errorf(p.filename, o.line, "prefetch: %q is not a percentage between 10%% and 90%%", o.args[2])
				}
				c.PrefetchPercent = n
			}
		case "serve_stale":
			if err := p.wantArgs(o, 0, 1); err != nil {
				return nil, err
			}
			c.ServeStale = time.Hour
			if len(o.args) == 1 {
				if c.ServeStale, err = p.duration(o.line, o.name, o.args[0], time.Second); err != nil {
					return nil, err
				}
			}
		default:
			return nil, errorf(p.filename, o.line, "cache: unknown option %q", o.name)
		}
	}
	return c, nil
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
