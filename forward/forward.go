package forward

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	// defaultTimeout bounds one query over all its attempts: well under the
	// 5 s after which a stub resolver (glibc, musl) asks again.
	defaultTimeout = 2 * time.Second
	// defaultHealthCheck is the interval between probes of an upstream
	// whose last probe failed, as in CoreDNS.
	defaultHealthCheck = 500 * time.Millisecond

	// maxUpstreams is CoreDNS's limit on the number of upstreams.
	maxUpstreams = 15
	// udpSize is the EDNS buffer size offered to upstreams and in replies:
	// the DNS flag day 2020 value, which avoids IP fragmentation.
	udpSize = 1232
	// maxProbeTimeout bounds one health probe, as in CoreDNS.
	maxProbeTimeout = time.Second
)

// ErrLimit is returned by Exchange when Options.MaxConcurrent queries are
// already in flight.
var ErrLimit = errors.New("forward: too many concurrent queries")

// ErrNoHealthy is returned by Exchange when every upstream is marked down.
var ErrNoHealthy = errors.New("forward: no healthy upstream")

// ErrBadRequest is returned by Exchange for a message that is not a
// standard query with exactly one question; such a request is the client's
// error (FORMERR or NOTIMP), not the upstream's.
var ErrBadRequest = errors.New("forward: not a single-question standard query")

// Options configures a Forwarder. The zero value of each field but
// Upstreams selects its default.
type Options struct {
	// Upstreams are the resolvers to forward to: "IP", "IP:port" (the
	// port defaults to 53) or "[IPv6]:port", optionally prefixed by
	// "dns://"; or "tls://" and the same (port 853 by default) for DNS
	// over TLS, where "tls://IP%NAME[:port]" names the upstream's TLS
	// server name; ParseResolvConf gives them from a resolv.conf.
	// Duplicates are dropped; at most 15 may remain.
	Upstreams []string
	// TLS is the client TLS configuration of tls:// upstreams: client
	// certificate, roots (the system's when nil). It is cloned; its
	// ServerName is TLSServerName, or the name written with the
	// upstream, or else the upstream's IP address (the certificate must
	// then name that address, as Go's TLS client checks it).
	TLS *tls.Config
	// TLSServerName is the server name checked in the certificates of
	// tls:// upstreams, and sent as SNI. It may not be set together with
	// a name written with an upstream.
	TLSServerName string
	// PreferUDP sends queries of clients that came over TCP (see
	// WithClientTCP) over UDP first too; without it they go over TCP, as
	// in CoreDNS. ForceTCP wins over it; DNS over TLS ignores both.
	PreferUDP bool
	// Expire is how long a TCP or TLS connection may stay idle and still
	// be reused (10 s when 0; negative: never reused).
	Expire time.Duration
	// MaxAge, when positive, is how long a connection may be reused at
	// all, however busy.
	MaxAge time.Duration
	// MaxIdleConns, when positive, bounds the idle connections kept per
	// upstream and transport.
	MaxIdleConns int
	// ReadTimeout, when positive, bounds each exchange with one upstream;
	// the Timeout still bounds the query.
	ReadTimeout time.Duration
	// Failover lists rcodes (not NOERROR) on which the next upstream is
	// asked, as for a failed exchange; when every upstream gave one, the
	// last such reply is the answer.
	Failover []int
	// FailFast makes Exchange fail with ErrNoHealthy when every upstream is
	// marked down; without it, as in CoreDNS, the query goes to one
	// upstream picked at random, since the health checks may be what is
	// broken.
	FailFast bool
	// MaxAttempts, when positive, bounds the upstream exchanges started
	// for one query (the resend to a sole upstream counts).
	MaxAttempts int
	// HealthDomain is the name whose NS records the health probes ask for
	// ("." when empty); HealthNoRec clears their RD bit.
	HealthDomain string
	HealthNoRec  bool
	// SourceAddr, when valid, is the local address of every query and
	// probe.
	SourceAddr netip.Addr
	// Policy orders the upstreams for each query: "random" (the default),
	// "round_robin" or "sequential".
	Policy string
	// ForceTCP sends every query, and every health probe, over TCP.
	ForceTCP bool
	// MaxConcurrent bounds the queries in Exchange at once; beyond it
	// Exchange fails with ErrLimit at once. 0 means no limit.
	MaxConcurrent int
	// Timeout bounds one query over all its attempts (2 s when 0).
	Timeout time.Duration
	// HealthCheck is the interval between health probes of an upstream
	// whose last probe failed (500 ms when 0).
	HealthCheck time.Duration
	// MaxFails is the number of failed health probes in a row that mark an
	// upstream down; 0 means never (and no health checks at all), as
	// CoreDNS's "max_fails 0". CoreDNS's default is 2: the configuration
	// layer sets it. A probe waits for its reply up to the Timeout, at most
	// 1 s.
	MaxFails int
	// OnExchange, when set, is called after each exchange with one
	// upstream (not for health probes) with its address, the reply's
	// rcode (-1 when err is not nil) and how long it took; an exchange
	// abandoned, unanswered, because another upstream answered before it
	// had its share of the Timeout is not reported. It is called from
	// several goroutines at once and must be quick.
	OnExchange func(upstream string, rcode int, d time.Duration, err error)
	// Log receives upstream state changes and failures (slog.Default when
	// nil).
	Log *slog.Logger
}

// Forwarder sends queries to upstream resolvers. Its methods are safe for
// concurrent use.
type Forwarder struct {
	ups          []*upstream
	policy       policy
	forceTCP     bool
	preferUDP    bool
	limits       poolLimits
	readTimeout  time.Duration
	failover     []int
	failFast     bool
	maxAttempts  int
	localUDP     *net.UDPAddr
	localTCP     *net.TCPAddr
	probeQ       dns.Question
	maxConc      int64
	timeout      time.Duration
	hcInterval   time.Duration
	maxFails     int32
	onExchange   func(string, int, time.Duration, error)
	log          *slog.Logger
	concurrent   atomic.Int64
	flightMu     sync.Mutex
	flight       map[flightKey]*call
	probeWire    []byte
	probeTimeout time.Duration

	runMu      sync.Mutex
	stopHealth context.CancelFunc // nil when health checking is not running
	running    sync.WaitGroup
}

// defaultExpire is how long an idle connection may be reused, as in
// CoreDNS.
const defaultExpire = 10 * time.Second

// New validates o and returns a Forwarder. Health checking starts with
// Start.
func New(o Options) (*Forwarder, error) {
	if len(o.Upstreams) == 0 {
		return nil, errors.New("forward: no upstream")
	}
	f := &Forwarder{
		forceTCP:    o.ForceTCP,
		preferUDP:   o.PreferUDP,
		maxConc:     int64(o.MaxConcurrent),
		timeout:     o.Timeout,
		hcInterval:  o.HealthCheck,
		onExchange:  o.OnExchange,
		log:         o.Log,
		flight:      make(map[flightKey]*call),
		readTimeout: o.ReadTimeout,
		failover:    slices.Clone(o.Failover),
		failFast:    o.FailFast,
		maxAttempts: o.MaxAttempts,
		limits:      poolLimits{expire: o.Expire, maxAge: o.MaxAge, maxIdle: o.MaxIdleConns},
	}
	switch {
	case o.Expire == 0:
		f.limits.expire = defaultExpire
	case o.Expire < 0:
		f.limits.expire = 0
	}
	if slices.Contains(o.Failover, dns.RcodeSuccess) {
		return nil, errors.New("forward: NOERROR cannot be a failover rcode")
	}
	if o.SourceAddr.IsValid() {
		a := o.SourceAddr.Unmap()
		f.localUDP = &net.UDPAddr{IP: a.AsSlice(), Zone: a.Zone()}
		f.localTCP = &net.TCPAddr{IP: a.AsSlice(), Zone: a.Zone()}
	}
	base := o.TLS
	if base == nil {
		base = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	var sessions tls.ClientSessionCache
	seen := make(map[string]bool)
	for _, s := range o.Upstreams {
		t, err := parseUpstream(s)
		if err != nil {
			return nil, err
		}
		u := newUpstream(t.ap)
		key := u.addr
		if t.tls {
			key = "tls://" + key
			if t.serverName != "" && o.TLSServerName != "" {
				return nil, fmt.Errorf("forward: %q names its TLS server name, and so does TLSServerName (%q): keep one", s, o.TLSServerName)
			}
			if sessions == nil {
				sessions = tls.NewLRUClientSessionCache(2 * maxUpstreams)
			}
			u.tls = base.Clone()
			u.tls.ClientSessionCache = sessions
			switch {
			case o.TLSServerName != "":
				u.tls.ServerName = o.TLSServerName
			case t.serverName != "":
				u.tls.ServerName = t.serverName
			default:
				u.tls.ServerName = t.ap.Addr().WithZone("").String()
			}
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		f.ups = append(f.ups, u)
	}
	if len(f.ups) > maxUpstreams {
		return nil, fmt.Errorf("forward: %d upstreams, at most %d allowed", len(f.ups), maxUpstreams)
	}
	var err error
	if f.policy, err = newPolicy(o.Policy); err != nil {
		return nil, err
	}
	switch {
	case o.MaxConcurrent < 0:
		return nil, fmt.Errorf("forward: negative MaxConcurrent %d", o.MaxConcurrent)
	case o.Timeout < 0:
		return nil, fmt.Errorf("forward: negative Timeout %v", o.Timeout)
	case o.HealthCheck < 0:
		return nil, fmt.Errorf("forward: negative HealthCheck %v", o.HealthCheck)
	case o.MaxFails < 0:
		return nil, fmt.Errorf("forward: negative MaxFails %d", o.MaxFails)
	case o.MaxAge < 0, o.MaxIdleConns < 0, o.ReadTimeout < 0, o.MaxAttempts < 0:
		return nil, errors.New("forward: negative MaxAge, MaxIdleConns, ReadTimeout or MaxAttempts")
	case o.MaxAge > 0 && o.MaxAge < f.limits.expire:
		return nil, fmt.Errorf("forward: MaxAge %v is less than Expire %v", o.MaxAge, f.limits.expire)
	}
	if f.timeout == 0 {
		f.timeout = defaultTimeout
	}
	if f.hcInterval == 0 {
		f.hcInterval = defaultHealthCheck
	}
	f.maxFails = int32(min(o.MaxFails, 1<<30))
	if f.log == nil {
		f.log = slog.Default()
	}
	f.probeTimeout = min(f.timeout, maxProbeTimeout)
	domain := o.HealthDomain
	if domain == "" {
		domain = "."
	}
	probe := new(dns.Msg)
	probe.SetQuestion(dns.Fqdn(domain), dns.TypeNS)
	probe.RecursionDesired = !o.HealthNoRec
	if f.probeWire, err = probe.Pack(); err != nil {
		return nil, fmt.Errorf("forward: health check domain %q: %w", domain, err)
	}
	f.probeQ = probe.Question[0]
	return f, nil
}

// UpstreamStatus is the state of one upstream, for metrics and debugging.
type UpstreamStatus struct {
	// Addr is the upstream's address, IP:port.
	Addr string
	// Requests counts the exchanges started with it (a TCP retry after a
	// truncated UDP reply is part of the same exchange).
	Requests uint64
	// Failures counts the exchanges that got no usable reply: network
	// errors, malformed TCP replies, and no reply within the Timeout or,
	// when another upstream answered first, within this one's share of it.
	Failures uint64
	// Healthy is false while the upstream is marked down.
	Healthy bool
	// Fails is the number of failed health probes in a row;
	// ProbeFailures counts every failed probe.
	Fails         int
	ProbeFailures uint64
	// Latency is a moving average of the duration of answered exchanges.
	Latency time.Duration
}

// Upstreams returns the state of each upstream, in configuration order.
func (f *Forwarder) Upstreams() []UpstreamStatus {
	out := make([]UpstreamStatus, len(f.ups))
	for i, u := range f.ups {
		out[i] = UpstreamStatus{
			Addr:          u.addr,
			Requests:      u.requests.Load(),
			Failures:      u.failures.Load(),
			Healthy:       !f.down(u),
			Fails:         int(u.fails.Load()),
			ProbeFailures: u.probeFailures.Load(),
			Latency:       time.Duration(u.latency.Load()),
		}
	}
	return out
}

// Exchange sends req upstream and returns the upstream's reply, with req's
// ID and question.
//
// The query on the wire carries req's question and its RD, CD and AD bits,
// a random ID from a fresh socket (so a random source port), and an EDNS
// OPT offering a 1232-byte buffer with req's DO bit; req's own EDNS
// options are not forwarded (they are hop by hop). It goes over UDP and is
// retried over TCP with the same upstream when the reply is truncated, or
// over TCP only with ForceTCP. Replies whose ID or question (name
// case-insensitively, type, class) does not match are discarded and reading
// goes on. The returned reply carries an OPT only when req has one; it is
// complete, not sized for the client's transport: that is the caller's job.
//
// Identical queries in flight at once (same name case-insensitively, type,
// class, DO, CD, RD and AD bits) are sent upstream once; each caller gets
// its own copy.
//
// Upstreams are tried in policy order, skipping those marked down. The
// first is given a share of the Timeout; when it fails or has not answered
// by then the next one is asked too, while the first may still answer. With
// a single healthy upstream the query is sent again to it halfway. The
// first usable reply wins, whatever its rcode. Exchange fails with
// ErrNoHealthy at once when every upstream is marked down, and with the
// last error when every attempt failed or the Timeout passed. ctx may end
// the wait early; the upstream query then goes on, up to Timeout, for the
// other callers sharing it.
func (f *Forwarder) Exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	if req == nil || req.Response || req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		return nil, ErrBadRequest
	}
	if f.maxConc > 0 {
		n := f.concurrent.Add(1)
		defer f.concurrent.Add(-1)
		if n > f.maxConc {
			return nil, ErrLimit
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	q := req.Question[0]
	opt := req.IsEdns0()
	key := flightKey{name: lowerASCII(q.Name), qtype: q.Qtype, qclass: q.Qclass}
	if opt != nil && opt.Do() {
		key.flags |= flagDO
	}
	if req.CheckingDisabled {
		key.flags |= flagCD
	}
	if req.RecursionDesired {
		key.flags |= flagRD
	}
	if req.AuthenticatedData {
		key.flags |= flagAD
	}
	if !f.forceTCP && !f.preferUDP && ClientTCP(ctx) {
		key.flags |= flagTCP
	}

	f.flightMu.Lock()
	c, shared := f.flight[key]
	if shared {
		c.dups++
	} else {
		c = &call{done: make(chan struct{})}
		f.flight[key] = c
	}
	f.flightMu.Unlock()
	if !shared {
		go f.run(c, key, q)
	}

	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.err != nil {
		return nil, c.err
	}
	m := c.msg
	if shared || c.dups > 0 {
		m = m.Copy()
	}
	finishReply(m, req, opt != nil)
	return m, nil
}

// flightKey identifies queries that may share one upstream exchange.
type flightKey struct {
	name          string
	qtype, qclass uint16
	flags         uint8
}

const (
	flagDO = 1 << iota
	flagCD
	flagRD
	flagAD
	// flagTCP: the query goes over TCP because its client's did.
	flagTCP
)

// clientTCPKey marks the context of a query whose client came over TCP.
type clientTCPKey struct{}

// WithClientTCP returns ctx marked as the context of a query that came
// over TCP: Exchange then asks plain DNS upstreams over TCP too, unless
// Options.PreferUDP, as CoreDNS forwards over the client's transport.
func WithClientTCP(ctx context.Context) context.Context {
	return context.WithValue(ctx, clientTCPKey{}, true)
}

// ClientTCP reports whether WithClientTCP marked ctx.
func ClientTCP(ctx context.Context) bool { return ctx.Value(clientTCPKey{}) != nil }

// call is one upstream exchange shared by the callers asking the same
// question. dups (under flightMu) counts the callers beyond the first; it
// is final once done is closed, since the call leaves the map first.
type call struct {
	done chan struct{}
	msg  *dns.Msg
	err  error
	dups int
}

// run performs c's upstream exchange and hands the result to its callers.
func (f *Forwarder) run(c *call, key flightKey, q dns.Question) {
	c.msg, c.err = f.forward(q, key.flags)
	f.flightMu.Lock()
	delete(f.flight, key)
	f.flightMu.Unlock()
	close(c.done)
}

// finishReply makes an upstream reply the answer to req.
func finishReply(m *dns.Msg, req *dns.Msg, reqEDNS bool) {
	m.Id = req.Id
	m.Response = true
	m.Opcode = dns.OpcodeQuery
	if len(m.Question) == 1 {
		m.Question[0] = req.Question[0]
	} else {
		m.Question = append(m.Question[:0], req.Question[0])
	}
	i := 0
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if !reqEDNS {
				continue
			}
			o.SetUDPSize(udpSize)
		}
		m.Extra[i] = rr
		i++
	}
	clear(m.Extra[i:])
	m.Extra = m.Extra[:i]
	if !reqEDNS && m.Rcode > 0xF {
		// An extended rcode needs the OPT the client cannot read.
		m.Rcode = dns.RcodeServerFailure
	}
}

// forward asks the upstreams q, per the policy, until one answers or the
// Timeout passes.
func (f *Forwarder) forward(q dns.Question, flags uint8) (*dns.Msg, error) {
	wire, err := packQuery(q, flags)
	if err != nil {
		return nil, err
	}

	plan := f.policy.order(f.ups, make([]*upstream, 0, len(f.ups)+1))
	healthy := plan[:0]
	for _, u := range plan {
		if !f.down(u) {
			healthy = append(healthy, u)
		}
	}
	if len(healthy) == 0 {
		if f.failFast {
			return nil, ErrNoHealthy
		}
		// Every upstream is down: the health checks themselves may be
		// what is broken, so try one at random, as CoreDNS does.
		healthy = append(healthy, f.ups[rand.IntN(len(f.ups))])
	}
	distinct := len(healthy)
	if len(healthy) == 1 {
		// Send again halfway: a lost datagram costs half the time.
		healthy = append(healthy, healthy[0])
	}
	if f.maxAttempts > 0 && len(healthy) > f.maxAttempts {
		healthy = healthy[:f.maxAttempts]
	}
	stagger := f.timeout / time.Duration(len(healthy))

	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	results := make(chan result, len(healthy))
	launched, pending := 0, 0
	launch := func() {
		u := healthy[launched]
		launched++
		pending++
		go func() {
			m, err := f.attempt(ctx, u, wire, &q, flags, stagger)
			results <- result{m, err}
		}()
	}
	launch()
	timer := time.NewTimer(stagger)
	defer timer.Stop()
	var lastErr error
	var fallback *dns.Msg // the last reply with a failover rcode
	failovers := 0
	for {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				if !slices.Contains(f.failover, r.msg.Rcode) {
					return r.msg, nil
				}
				fallback = r.msg
				if failovers++; failovers >= distinct {
					return fallback, nil
				}
			} else {
				lastErr = r.err
			}
			if launched < len(healthy) {
				launch()
				timer.Reset(stagger)
			} else if pending == 0 {
				if fallback != nil {
					return fallback, nil
				}
				return nil, lastErr
			}
		case <-timer.C:
			if launched < len(healthy) {
				launch()
				timer.Reset(stagger)
			}
		}
	}
}

// packQuery returns the query for q on the wire, its ID zero: the flags'
// RD, CD and AD bits, and an OPT offering udpSize with the flags' DO bit.
func packQuery(q dns.Question, flags uint8) ([]byte, error) {
	// A name's wire form is at most one byte longer than its text.
	b := make([]byte, 12+len(q.Name)+1+4+11)
	if flags&flagRD != 0 {
		b[2] = 0x01
	}
	if flags&flagAD != 0 {
		b[3] |= 0x20
	}
	if flags&flagCD != 0 {
		b[3] |= 0x10
	}
	b[5] = 1  // QDCOUNT
	b[11] = 1 // ARCOUNT
	off, err := dns.PackDomainName(q.Name, b, 12, nil, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	b = b[:off]
	b = binary.BigEndian.AppendUint16(b, q.Qtype)
	b = binary.BigEndian.AppendUint16(b, q.Qclass)
	// OPT: root owner, type, class (UDP size), TTL (extended rcode,
	// version, DO and zero bits), empty RDATA.
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, dns.TypeOPT)
	b = binary.BigEndian.AppendUint16(b, udpSize)
	var do byte
	if flags&flagDO != 0 {
		do = 0x80
	}
	return append(b, 0, 0, do, 0, 0, 0), nil
}

// result is the outcome of one attempt.
type result struct {
	msg *dns.Msg
	err error
}

// attempt is one exchange with u: over TLS for a tls:// upstream;
// otherwise over UDP, then TCP when the reply is truncated, or over TCP
// only with ForceTCP or when the client came over TCP (flagTCP). It records
// the outcome in u: an attempt abandoned because another upstream answered
// first is a failure when u had its share of the time (share) to answer.
func (f *Forwarder) attempt(ctx context.Context, u *upstream, wire []byte, q *dns.Question, flags uint8, share time.Duration) (*dns.Msg, error) {
	start := time.Now()
	u.requests.Add(1)
	parent := ctx
	if f.readTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.readTimeout)
		defer cancel()
	}
	var m *dns.Msg
	var err error
	switch {
	case u.tls != nil:
		m, err = f.roundTrip(ctx, u, overTLS, wire, q)
	case f.forceTCP || flags&flagTCP != 0:
		m, err = f.roundTrip(ctx, u, overTCP, wire, q)
	default:
		m, err = f.roundTrip(ctx, u, overUDP, wire, q)
		if err == nil && m.Truncated {
			m, err = f.roundTrip(ctx, u, overTCP, wire, q)
		}
	}
	d := time.Since(start)
	if err != nil && errors.Is(context.Cause(parent), context.Canceled) {
		// Another upstream answered first.
		if d < share {
			return nil, err // asked late: no verdict on this one
		}
		err = fmt.Errorf("no reply within %v, another upstream answered: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
	}
	rcode := -1
	if err != nil {
		err = fmt.Errorf("forward: upstream %s: %w", u.name(), err)
		u.failures.Add(1)
		f.log.Debug("upstream exchange failed", "upstream", u.name(), "name", q.Name,
			"type", dns.TypeToString[q.Qtype], "duration", d, "err", err)
		f.kick(u)
	} else {
		rcode = m.Rcode
		u.observe(d)
	}
	if f.onExchange != nil {
		f.onExchange(u.addr, rcode, d, err)
	}
	return m, err
}

// lowerASCII lower-cases the ASCII letters of s, without allocating when
// there are none.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// equalFoldASCII reports whether a and b are equal with ASCII letters
// compared case-insensitively, as DNS names are.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
