package forward

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstream is one resolver and what is known of it.
type upstream struct {
	addr string // canonical IP:port
	ap   netip.AddrPort
	udp  *net.UDPAddr

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
// upstream starts probing it every HealthCheck interval until it answers.
// Start after Start does nothing, and so does Start with MaxFails 0.
func (f *Forwarder) Start() {
	f.runMu.Lock()
	defer f.runMu.Unlock()
	if f.stopHealth != nil || f.maxFails == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stopHealth = cancel
	for _, u := range f.ups {
		f.running.Add(1)
		go f.healthLoop(ctx, u)
	}
}

// Stop stops health checking and waits for the probes under way to end.
// Upstream states stay as they are, and Exchange goes on working.
func (f *Forwarder) Stop() {
	f.runMu.Lock()
	if f.stopHealth != nil {
		f.stopHealth()
		f.stopHealth = nil
	}
	f.runMu.Unlock()
	f.running.Wait()
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
					f.log.Info("upstream is up again", "upstream", u.addr)
				}
				break
			}
			u.probeFailures.Add(1)
			if n := u.fails.Add(1); n == f.maxFails {
				f.log.Warn("upstream marked down", "upstream", u.addr, "err", err)
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

// check sends u a health probe, ". IN NS", as CoreDNS does: any reply is
// health, whatever its rcode.
func (f *Forwarder) check(ctx context.Context, u *upstream) error {
	ctx, cancel := context.WithTimeout(ctx, f.probeTimeout)
	defer cancel()
	q := dns.Question{Name: ".", Qtype: dns.TypeNS, Qclass: dns.ClassINET}
	_, err := roundTrip(ctx, u, f.forceTCP, f.probeWire, &q)
	return err
}

// parseAddr parses "IP", "IP:port", "[IPv6]" or "[IPv6]:port", optionally
// prefixed by "dns://", with port 53 by default. With listen (a listen
// address) the host may be empty or unspecified, meaning every address.
func parseAddr(s string, listen bool) (netip.AddrPort, error) {
	orig := s
	s = strings.TrimSpace(s)
	if len(s) >= 6 && strings.EqualFold(s[:6], "dns://") {
		s = s[6:]
	}
	if strings.Contains(s, "://") {
		return netip.AddrPort{}, fmt.Errorf("forward: %q: only plain DNS (dns://) is supported", orig)
	}
	var ap netip.AddrPort
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		ap = netip.AddrPortFrom(a, 53)
	} else {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("forward: %q: not an IP address or IP:port", orig)
		}
		a := netip.IPv6Unspecified()
		if host != "" || !listen {
			if a, err = netip.ParseAddr(host); err != nil {
				return netip.AddrPort{}, fmt.Errorf("forward: %q: not an IP address", orig)
			}
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return netip.AddrPort{}, fmt.Errorf("forward: %q: bad port %q", orig, port)
		}
		ap = netip.AddrPortFrom(a, uint16(p))
	}
	a := ap.Addr().Unmap()
	if !listen && (a.IsUnspecified() || a.IsMulticast()) {
		return netip.AddrPort{}, fmt.Errorf("forward: %q: not a unicast address", orig)
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
