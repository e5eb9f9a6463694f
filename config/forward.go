package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Forward is a forward directive, or a proxy directive read as one:
//
//	forward FROM TO… {
//	    except IGNORED_NAMES…
//	    force_tcp
//	    prefer_udp
//	    expire DURATION
//	    max_age DURATION
//	    max_idle_conns INTEGER
//	    read_timeout DURATION
//	    max_fails INTEGER
//	    max_connect_attempts INTEGER
//	    tls [CERT KEY [CA]] | tls CA
//	    tls_servername NAME
//	    policy random|round_robin|sequential
//	    health_check DURATION [no_rec] [domain FQDN]
//	    max_concurrent MAX
//	    next RCODE…
//	    next_on_nodata
//	    failover RCODE…
//	    failfast_all_unhealthy_upstreams
//	    source_address IP
//	}
//
// FROM is the zone forwarded. Each TO is IP, IP:PORT, [IPv6]:PORT or
// dns:// and one of those (port 53), tls://IP[:PORT] (DNS over TLS, port
// 853; tls://IP%NAME[:PORT] gives that upstream's TLS server name), or the
// path of a resolv.conf file whose nameservers are used; at most 15.
// Hostnames and https:// are refused. Defaults: policy random, max_fails
// 2, health_check 0.5s probing ". IN NS" with RD set, expire 10s, no
// max_age, max_idle_conns 0 (no limit), read_timeout 2s, no
// max_concurrent, no max_connect_attempts cap (svcdisc never asks more
// than twice the upstreams).
//
// The proxy directive (removed from CoreDNS in 1.5) is read as forward:
//
//	proxy FROM TO… {
//	    policy random|least_conn|round_robin|sequential|first
//	    fail_timeout DURATION
//	    max_fails INTEGER
//	    health_check PATH:PORT [DURATION]
//	    except IGNORED_NAMES…
//	    spray
//	    protocol dns [force_tcp]
//	}
//
// policy (first as sequential, least_conn as random), max_fails, except
// and force_tcp keep their meaning; spray is what forward does anyway;
// fail_timeout, health_check (an HTTP check) and least_conn are ignored
// with a warning; protocol grpc and https_google are refused.
type Forward struct {
	// From is the zone forwarded, normalised ("." for every name).
	From string
	// To holds upstreams as written: IP, IP:PORT, [IPv6]:PORT, dns:// or
	// tls:// and those, or the path of a resolv.conf file (IsResolvConf).
	To            []string
	Except        []string // zones not forwarded
	Policy        string   // random (default), round_robin, sequential
	ForceTCP      bool
	PreferUDP     bool
	MaxConcurrent int
	MaxFails      int           // default 2
	HealthCheck   time.Duration // default 0.5s
	// HealthDomain is the name health probes ask NS for (default ".");
	// HealthNoRec clears their RD bit.
	HealthDomain string
	HealthNoRec  bool
	// Expire is how long an idle TCP or TLS connection is kept for reuse
	// (default 10s; 0: never reused). MaxAge, when not 0, bounds how long
	// a connection is reused at all; MaxIdleConns, when not 0, how many
	// idle connections are kept per upstream and transport.
	Expire       time.Duration
	MaxAge       time.Duration
	MaxIdleConns int
	// ReadTimeout bounds an exchange with one upstream (default 2s).
	ReadTimeout time.Duration
	// MaxConnectAttempts, when not 0, bounds the upstream exchanges per
	// query.
	MaxConnectAttempts int
	// TLS holds the tls option's files: none (system roots), CA, CERT KEY
	// or CERT KEY CA; TLSSet says the option was given.
	TLS           []string
	TLSSet        bool
	TLSLine       int // the tls option's line, for errors loading its files
	TLSServerName string
	// Next are the rcodes on which the query goes to the next forward;
	// NextOnNodata does so for an empty NOERROR too.
	Next         []int
	NextOnNodata bool
	// Failover are the rcodes on which another upstream is asked.
	Failover []int
	// FailFast answers SERVFAIL when every upstream is down, instead of
	// trying one at random.
	FailFast bool
	// SourceAddress is the local address of upstream queries, if valid.
	SourceAddress netip.Addr
	Line          int
}

// IsResolvConf reports whether an upstream as written is a resolv.conf
// path rather than an address: it has no scheme and a "/" in it.
func IsResolvConf(to string) bool {
	scheme, rest, ok := strings.Cut(to, "://")
	if ok {
		return strings.EqualFold(scheme, "dns") && strings.HasPrefix(rest, "/")
	}
	return strings.Contains(to, "/")
}

// ResolvConfPath returns the file of a resolv.conf upstream ("dns://"
// stripped).
func ResolvConfPath(to string) string {
	if _, rest, ok := strings.Cut(to, "://"); ok {
		return rest
	}
	return to
}

// forward parses a forward or proxy directive, described at Forward.
// Warnings (a proxy's ignored options, a tls:// upstream without a server
// name) go to srv.
func (p *parser) forward(d directive, srv *Server) (*Forward, error) {
	name := d.name
	if len(d.args) < 2 {
		return nil, errorf(p.filename, d.line, "%s: want FROM and at least one upstream", name)
	}
	from, err := normalizeZone(d.args[0])
	if err != nil {
		return nil, errorf(p.filename, d.line, "%s: %v", name, err)
	}
	f := &Forward{From: from, Policy: "random", MaxFails: 2, HealthCheck: 500 * time.Millisecond,
		HealthDomain: ".", Expire: 10 * time.Second, ReadTimeout: 2 * time.Second, Line: d.line}
	tlsUpstreams := 0
	for _, to := range d.args[1:] {
		isTLS, err := upstreamSyntax(to)
		if err != nil {
			return nil, errorf(p.filename, d.line, "%s: %v", name, err)
		}
		if isTLS {
			if name == "proxy" {
				return nil, errorf(p.filename, d.line, "proxy: %q: proxy did not speak DNS over TLS: use forward", to)
			}
			tlsUpstreams++
		}
		f.To = append(f.To, to)
	}
	if len(f.To) > 15 {
		return nil, errorf(p.filename, d.line, "%s: at most 15 upstreams, got %d", name, len(f.To))
	}
	if name == "proxy" {
		if err := p.proxyBlock(d, f, srv); err != nil {
			return nil, err
		}
		return f, nil
	}
	seen := make(map[string]int) // an option's last line
	for _, o := range d.block {
		seen[o.name] = o.line
		if err := p.forwardOption(o, f); err != nil {
			return nil, err
		}
	}
	for _, to := range f.To {
		if strings.Contains(to, "%") && f.TLSServerName != "" {
			return nil, errorf(p.filename, seen["tls_servername"], "tls_servername: %q names its own TLS server name: keep one of them", to)
		}
	}
	if tlsUpstreams > 0 && f.TLSServerName == "" && !allNamed(f.To) {
		srv.Warnings = append(srv.Warnings, fmt.Sprintf("%s:%d: forward: DNS over TLS without tls_servername: the upstreams' certificates must name their IP addresses; set tls_servername to the name in them",
			p.filename, d.line))
	}
	if f.MaxAge > 0 && f.MaxAge < f.Expire {
		return nil, errorf(p.filename, seen["max_age"], "max_age: %s is less than expire %s", f.MaxAge, f.Expire)
	}
	return f, nil
}

// allNamed reports whether every tls:// upstream names its server name.
func allNamed(to []string) bool {
	for _, s := range to {
		if strings.HasPrefix(strings.ToLower(s), "tls://") && !strings.Contains(s, "%") {
			return false
		}
	}
	return true
}

// forwardOption parses one option of a forward block into f.
func (p *parser) forwardOption(o option, f *Forward) error {
	var err error
	one := func() error { return p.wantArgs(o, 1, 1) }
	none := func() error { return p.wantArgs(o, 0, 0) }
	switch o.name {
	case "except":
		if len(o.args) == 0 {
			return errorf(p.filename, o.line, "except: want at least one zone")
		}
		for _, a := range o.args {
			z, err := normalizeZone(a)
			if err != nil {
				return errorf(p.filename, o.line, "except: %v", err)
			}
			f.Except = append(f.Except, z)
		}
	case "force_tcp":
		f.ForceTCP = true
		return none()
	case "prefer_udp":
		f.PreferUDP = true
		return none()
	case "policy":
		if err := one(); err != nil {
			return err
		}
		switch o.args[0] {
		case "random", "round_robin", "sequential":
			f.Policy = o.args[0]
		default:
			return errorf(p.filename, o.line, "policy: unknown policy %q: want random, round_robin or sequential", o.args[0])
		}
	case "max_concurrent":
		if err := one(); err != nil {
			return err
		}
		f.MaxConcurrent, err = p.count(o.line, o.name, o.args[0], 0)
	case "max_fails":
		if err := one(); err != nil {
			return err
		}
		f.MaxFails, err = p.count(o.line, o.name, o.args[0], 0)
	case "max_connect_attempts":
		if err := one(); err != nil {
			return err
		}
		f.MaxConnectAttempts, err = p.count(o.line, o.name, o.args[0], 0)
	case "max_idle_conns":
		if err := one(); err != nil {
			return err
		}
		f.MaxIdleConns, err = p.count(o.line, o.name, o.args[0], 0)
	case "health_check":
		if len(o.args) == 0 {
			return errorf(p.filename, o.line, "health_check: want DURATION [no_rec] [domain FQDN]")
		}
		if f.HealthCheck, err = p.duration(o.line, o.name, o.args[0], 10*time.Millisecond); err != nil {
			return err
		}
		for i := 1; i < len(o.args); i++ {
			switch o.args[i] {
			case "no_rec":
				f.HealthNoRec = true
			case "domain":
				i++
				if i == len(o.args) {
					return errorf(p.filename, o.line, "health_check: domain wants a name")
				}
				if _, ok := dns.IsDomainName(o.args[i]); !ok {
					return errorf(p.filename, o.line, "health_check: %q is not a domain name", o.args[i])
				}
				f.HealthDomain = dns.CanonicalName(o.args[i])
			default:
				return errorf(p.filename, o.line, "health_check: unknown option %q: want no_rec or domain FQDN", o.args[i])
			}
		}
	case "expire", "max_age":
		if err := one(); err != nil {
			return err
		}
		d, err := p.duration(o.line, o.name, o.args[0], 0)
		if err != nil {
			return err
		}
		if o.name == "expire" {
			f.Expire = d
		} else {
			f.MaxAge = d
		}
	case "read_timeout":
		if err := one(); err != nil {
			return err
		}
		f.ReadTimeout, err = p.duration(o.line, o.name, o.args[0], time.Millisecond)
	case "tls":
		if err := p.wantArgs(o, 0, 3); err != nil {
			return err
		}
		f.TLS, f.TLSSet = o.args, true
		f.TLSLine = o.line
	case "tls_servername":
		if err := one(); err != nil {
			return err
		}
		f.TLSServerName = o.args[0]
	case "next", "failover":
		if len(o.args) == 0 {
			return errorf(p.filename, o.line, "%s: want at least one rcode (NXDOMAIN, SERVFAIL, REFUSED…)", o.name)
		}
		for _, a := range o.args {
			rc, ok := dns.StringToRcode[strings.ToUpper(a)]
			if !ok {
				return errorf(p.filename, o.line, "%s: %q is not an rcode (NXDOMAIN, SERVFAIL, REFUSED…)", o.name, a)
			}
			if o.name == "next" {
				f.Next = append(f.Next, rc)
				continue
			}
			if rc == dns.RcodeSuccess {
				return errorf(p.filename, o.line, "failover: NOERROR cannot be used: it is an answer")
			}
			f.Failover = append(f.Failover, rc)
		}
	case "next_on_nodata":
		f.NextOnNodata = true
		return none()
	case "failfast_all_unhealthy_upstreams":
		f.FailFast = true
		return none()
	case "source_address":
		if err := one(); err != nil {
			return err
		}
		a, err := netip.ParseAddr(o.args[0])
		if err != nil {
			return errorf(p.filename, o.line, "source_address: %q is not an IP address", o.args[0])
		}
		f.SourceAddress = a
	case "resolver":
		return errorf(p.filename, o.line, "resolver: not supported: svcdisc does not resolve hostname upstreams; write their IP addresses")
	case "doh_method":
		return errorf(p.filename, o.line, "doh_method: DNS over HTTPS is not supported: use a tls:// upstream")
	default:
		return errorf(p.filename, o.line, "forward: unknown option %q", o.name)
	}
	return err
}

// proxyBlock reads a proxy block's options as forward's, warning about
// those forward cannot honour.
func (p *parser) proxyBlock(d directive, f *Forward, srv *Server) error {
	warn := func(o option, why string) {
		srv.Warnings = append(srv.Warnings, fmt.Sprintf("%s:%d: proxy: %s is ignored: %s", p.filename, o.line, o.name, why))
	}
	var err error
	for _, o := range d.block {
		switch o.name {
		case "policy":
			if err := p.wantArgs(o, 1, 1); err != nil {
				return err
			}
			switch o.args[0] {
			case "random", "round_robin", "sequential":
				f.Policy = o.args[0]
			case "first":
				f.Policy = "sequential"
			case "least_conn":
				warn(o, "least_conn is read as random (forward has random, round_robin and sequential)")
			default:
				return errorf(p.filename, o.line, "policy: unknown policy %q: want random, round_robin, sequential or first", o.args[0])
			}
		case "max_fails":
			if err := p.wantArgs(o, 1, 1); err != nil {
				return err
			}
			if f.MaxFails, err = p.count(o.line, o.name, o.args[0], 0); err != nil {
				return err
			}
		case "except":
			if err := p.forwardOption(o, f); err != nil {
				return err
			}
		case "spray":
			// forward tries an upstream at random when all are down anyway.
			if err := p.wantArgs(o, 0, 0); err != nil {
				return err
			}
		case "fail_timeout":
			warn(o, "forward marks an upstream down after max_fails failed health probes, and up on the first answer")
		case "health_check":
			warn(o, "forward checks upstreams with DNS queries, not HTTP (see forward's health_check)")
		case "protocol":
			if len(o.args) == 0 {
				return errorf(p.filename, o.line, "protocol: want dns [force_tcp]")
			}
			switch o.args[0] {
			case "dns":
				for _, a := range o.args[1:] {
					if a != "force_tcp" {
						return errorf(p.filename, o.line, "protocol dns: unknown option %q: want force_tcp", a)
					}
					f.ForceTCP = true
				}
			case "https_google", "grpc":
				return errorf(p.filename, o.line, "protocol %s: not supported: use forward with tls:// upstreams (DNS over TLS) instead", o.args[0])
			default:
				return errorf(p.filename, o.line, "protocol: unknown protocol %q: want dns [force_tcp]", o.args[0])
			}
		default:
			return errorf(p.filename, o.line, "proxy: unknown option %q (proxy takes policy, fail_timeout, max_fails, health_check, except, spray, protocol; for more write forward)", o.name)
		}
	}
	return nil
}

// SplitServerName splits the part of a tls:// upstream after the scheme,
// written IP%NAME[:PORT] or [IPv6%NAME][:PORT] as CoreDNS writes it, into
// the address (IP[:PORT], [IPv6][:PORT]) and the TLS server name; named is
// false when there is no %NAME.
func SplitServerName(s string) (addr, name string, named bool) {
	i := strings.LastIndexByte(s, '%')
	if i < 0 {
		return s, "", false
	}
	host, name, port := s[:i], s[i+1:], ""
	if j := strings.LastIndexByte(name, ':'); j >= 0 {
		name, port = name[:j], name[j:]
	}
	if strings.HasPrefix(host, "[") {
		host, name = host+"]", strings.TrimSuffix(name, "]")
	}
	return host + port, name, true
}

// upstreamSyntax checks an upstream as written and reports whether it is
// DNS over TLS.
func upstreamSyntax(s string) (isTLS bool, err error) {
	if IsResolvConf(s) {
		return false, nil
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if ok {
		switch strings.ToLower(scheme) {
		case "dns":
		case "tls":
			isTLS = true
			if addr, name, named := SplitServerName(rest); named {
				if _, ok := dns.IsDomainName(name); !ok || name == "" {
					return false, fmt.Errorf("%q: %q is not a TLS server name", s, name)
				}
				rest = addr
			}
		case "https":
			return false, fmt.Errorf("%q: DNS over HTTPS is not supported: use tls:// (DNS over TLS)", s)
		default:
			return false, fmt.Errorf("%q: %s:// is not supported: use dns:// or tls://", s, scheme)
		}
		s = rest
	}
	if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return isTLS, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return isTLS, nil
	}
	return false, fmt.Errorf("%q is not an IP address or file: write IP[:PORT], tls://IP[:PORT] or a resolv.conf path (hostnames are not resolved)", s)
}
