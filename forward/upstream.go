package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
)

// upstream is one resolver and what is known of it.
type upstream struct {
	addr string // canonical IP:port
	ap   netip.AddrPort
	udp  *net.UDPAddr
	// tls is the client TLS configuration of a tls:// upstream (its
	// ServerName set), nil for plain DNS.
	tls *tls.Config
	// idle holds the TCP or TLS connections kept for reuse.
	idle pool

	requests, failures atomic.Uint64
	fails              atomic.Int32 // failed health probes in a row
	probeFailures      atomic.Uint64
	latency            atomic.Int64 // moving average, nanoseconds

	// probe asks the health loop for a round of probes (capacity 1).
	probe chan struct{}
}

func newUpstream(ap netip.AddrPort) *upstream {
	return &upstream{
		addr:  ap.String(),
		ap:    ap,
		udp:   net.UDPAddrFromAddrPort(ap),
		probe: make(chan struct{}, 1),
	}
}

// name is u as logs show it: tls://IP:port for DNS over TLS, IP:port
// otherwise.
func (u *upstream) name() string {
	if u.tls != nil {
		return "tls://" + u.addr
	}
	return u.addr
}

// observe folds the duration of an answered exchange into the average.
func (u *upstream) observe(d time.Duration) {
	old := u.latency.Load()
	if old == 0 {
		u.latency.Store(int64(d))
		return
	}
	u.latency.Store(old + (int64(d)-old)/8)
}

// down reports whether u is marked down.
func (f *Forwarder) down(u *upstream) bool {
	return f.maxFails > 0 && u.fails.Load() >= f.maxFails
}

// kick asks for health probes of u after a failed exchange; a round already
// under way absorbs it.
func (f *Forwarder) kick(u *upstream) {
	if f.maxFails == 0 {
		return
	}
	select {
	case u.probe <- struct{}{}:
	default:
	}
}

// Start starts health checking: from then on a failed exchange with an
// upstream starts probing it every HealthCheck interval until it answers
// (not with MaxFails 0). It also starts closing idle connections once
// stale. Start after Start does nothing.
func (f *Forwarder) Start() {
	f.runMu.Lock()
	defer f.runMu.Unlock()
	if f.stopHealth != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stopHealth = cancel
	if f.maxFails > 0 {
		for _, u := range f.ups {
			f.running.Add(1)
			go f.healthLoop(ctx, u)
		}
	}
	if f.limits.expire > 0 {
		f.running.Add(1)
		go f.sweepLoop(ctx)
	}
}

// Stop stops health checking, waits for the probes under way to end and
// closes the idle connections. Upstream states stay as they are, and
// Exchange goes on working.
func (f *Forwarder) Stop() {
	f.runMu.Lock()
	if f.stopHealth != nil {
		f.stopHealth()
		f.stopHealth = nil
	}
	f.runMu.Unlock()
	f.running.Wait()
	for _, u := range f.ups {
		u.idle.sweep(f.limits, true)
	}
}

// sweepLoop closes stale idle connections every expire interval until ctx
// ends.
func (f *Forwarder) sweepLoop(ctx context.Context) {
	defer f.running.Done()
	t := time.NewTicker(f.limits.expire)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, u := range f.ups {
				u.idle.sweep(f.limits, false)
			}
		}
	}
}

// healthLoop runs rounds of probes of u when asked, each until u answers,
// until ctx ends.
func (f *Forwarder) healthLoop(ctx context.Context, u *upstream) {
	defer f.running.Done()
	timer := time.NewTimer(f.hcInterval)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.probe:
		}
		for {
			err := f.check(ctx, u)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				if u.fails.Swap(0) >= f.maxFails {
					f.log.Info("upstream is up again", "upstream", u.name())
				}
				break
			}
			u.probeFailures.Add(1)
			if n := u.fails.Add(1); n == f.maxFails {
				f.log.Warn("upstream marked down", "upstream", u.name(), "err", err)
			}
			timer.Reset(f.hcInterval)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
	}
}

// check sends u a health probe, ". IN NS" (or the HealthDomain's NS), as
// CoreDNS does: any reply is health, whatever its rcode. It goes over TLS
// to a tls:// upstream, over TCP with ForceTCP, over UDP otherwise.
func (f *Forwarder) check(ctx context.Context, u *upstream) error {
	ctx, cancel := context.WithTimeout(ctx, f.probeTimeout)
	defer cancel()
	t := overUDP
	switch {
	case u.tls != nil:
		t = overTLS
	case f.forceTCP:
		t = overTCP
	}
	q := f.probeQ
	_, err := f.roundTrip(ctx, u, t, f.probeWire, &q)
	return err
}

// target is a parsed upstream: its address, whether it speaks DNS over
// TLS, and the TLS server name written with it ("tls://IP%NAME").
type target struct {
	ap         netip.AddrPort
	tls        bool
	serverName string
}

// parseUpstream parses an upstream: "IP", "IP:port", "[IPv6]" or
// "[IPv6]:port", optionally prefixed by "dns://" (port 53 by default) or
// "tls://" (DNS over TLS, port 853 by default); a tls:// address may carry
// its TLS server name as "tls://IP%NAME" or "tls://IP%NAME:PORT".
func parseUpstream(s string) (target, error) {
	orig := s
	s = strings.TrimSpace(s)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		ap, err := parseAddr(s, false, 53)
		return target{ap: ap}, err
	}
	switch strings.ToLower(scheme) {
	case "dns":
		ap, err := parseAddr(rest, false, 53)
		if err != nil {
			return target{}, fmt.Errorf("forward: %q: %w", orig, errors.Unwrap(err))
		}
		return target{ap: ap}, nil
	case "tls":
		t := target{tls: true}
		if addr, name, named := config.SplitServerName(rest); named {
			rest = addr
			if _, ok := dns.IsDomainName(name); !ok || name == "" {
				return target{}, fmt.Errorf("forward: %q: %q is not a TLS server name", orig, name)
			}
			t.serverName = strings.TrimSuffix(name, ".")
		}
		ap, err := parseAddr(rest, false, 853)
		if err != nil {
			return target{}, fmt.Errorf("forward: %q: %w", orig, errors.Unwrap(err))
		}
		t.ap = ap
		return t, nil
	}
	return target{}, fmt.Errorf("forward: %q: %s:// is not supported: use dns:// or tls://", orig, scheme)
}

// errAddr wraps what is wrong with an address, so that parseUpstream can
// name the whole upstream instead.
type errAddr struct{ msg string }

func (e errAddr) Error() string { return e.msg }

// parseAddr parses "IP", "IP:port", "[IPv6]" or "[IPv6]:port", with port
// def by default. With listen (a listen address) the host may be empty or
// unspecified, meaning every address. Its errors wrap an errAddr.
func parseAddr(s string, listen bool, def uint16) (netip.AddrPort, error) {
	orig := s
	fail := func(format string, args ...any) (netip.AddrPort, error) {
		return netip.AddrPort{}, fmt.Errorf("forward: %q: %w", orig, errAddr{fmt.Sprintf(format, args...)})
	}
	s = strings.TrimSpace(s)
	if listen && len(s) >= 6 && strings.EqualFold(s[:6], "dns://") {
		s = s[6:]
	}
	if strings.Contains(s, "://") {
		return fail("use dns:// or tls:// only as the prefix of an upstream")
	}
	var ap netip.AddrPort
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		ap = netip.AddrPortFrom(a, def)
	} else {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return fail("not an IP address or IP:port (hostnames are not supported: write the address)")
		}
		a := netip.IPv6Unspecified()
		if host != "" || !listen {
			if a, err = netip.ParseAddr(host); err != nil {
				return fail("%q is not an IP address (hostnames are not supported: write the address)", host)
			}
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return fail("bad port %q", port)
		}
		ap = netip.AddrPortFrom(a, uint16(p))
	}
	a := ap.Addr().Unmap()
	if !listen && (a.IsUnspecified() || a.IsMulticast()) {
		return fail("not a unicast address")
	}
	return netip.AddrPortFrom(a, ap.Port()), nil
}

// policy orders the upstreams for one query.
type policy interface {
	// order appends the upstreams, in the order to try them, to dst.
	order(ups []*upstream, dst []*upstream) []*upstream
}

func newPolicy(name string) (policy, error) {
	switch name {
	case "", "random":
		return randomPolicy{}, nil
	case "round_robin":
		return &roundRobin{}, nil
	case "sequential":
		return sequential{}, nil
	}
	return nil, fmt.Errorf("forward: unknown policy %q (random, round_robin, sequential)", name)
}

// randomPolicy tries the upstreams in a random order.
type randomPolicy struct{}

func (randomPolicy) order(ups, dst []*upstream) []*upstream {
	n := len(dst)
	dst = append(dst, ups...)
	r := dst[n:]
	rand.Shuffle(len(r), func(i, j int) { r[i], r[j] = r[j], r[i] })
	return dst
}

// roundRobin starts each query one upstream further, then goes on in
// configuration order.
type roundRobin struct{ next atomic.Uint32 }

func (p *roundRobin) order(ups, dst []*upstream) []*upstream {
	i := int((p.next.Add(1) - 1) % uint32(len(ups)))
	dst = append(dst, ups[i:]...)
	return append(dst, ups[:i]...)
}

// sequential tries the upstreams in configuration order.
type sequential struct{}

func (sequential) order(ups, dst []*upstream) []*upstream { return append(dst, ups...) }
