package metrics

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/svcdisc/svcdisc/forward"
	pforward "github.com/svcdisc/svcdisc/plugin/forward"
	"github.com/svcdisc/svcdisc/resolver"
)

const namespace = "svcdisc"

// Options are what New needs.
type Options struct {
	// Version is svcdisc's version, for build_info.
	Version string
	// Names is the naming of the metrics CoreDNS also has; empty is
	// SVCDisc.
	Names Names
}

// Metrics is the registry and the metrics svcdisc updates directly.
type Metrics struct {
	Registry *prometheus.Registry
	s        *scheme

	requests     *prometheus.CounterVec
	responses    *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	requestSize  *prometheus.HistogramVec
	responseSize *prometheus.HistogramVec
	do           *prometheus.CounterVec // nil when the naming has none
	enabled      *prometheus.GaugeVec   // nil when the naming has none

	// Reloads counts Corefile reloads by status ("success", "failed").
	Reloads *prometheus.CounterVec
	// reloadFailed and reloadVersion are CoreDNS's reload metrics, nil
	// when the naming has none.
	reloadFailed  prometheus.Counter
	reloadVersion *prometheus.GaugeVec
	// forwardDuration times each exchange with an upstream; forwardRejects
	// counts queries shed by max_concurrent, forwardBroken (nil when the
	// naming has none) those finding every upstream down.
	forwardDuration *prometheus.HistogramVec
	forwardRejects  prometheus.Counter
	forwardBroken   prometheus.Counter
	// rateLimited counts UDP queries the ratelimit directive refused an
	// answer, by action: "drop" (no reply) or "slip" (an empty TC reply).
	rateLimited *prometheus.CounterVec
	// autopath holds autopath's counters, registered with its first use.
	autopath autopathMetrics
	// expansions counts the search-path expansions of clients, registered
	// with the first cluster zone's use.
	expansionsOnce sync.Once
	expansions     *prometheus.CounterVec
}

// New registers svcdisc's metrics, the Go runtime's and the process's on a
// fresh registry, named as o.Names says (svcdisc's when it is unknown).
func New(o Options) *Metrics {
	s := schemes[o.Names]
	if s == nil {
		s = schemes[SVCDisc]
	}
	m := &Metrics{Registry: prometheus.NewRegistry(), s: s}
	f := func(c prometheus.Collector) { m.Registry.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counters := func(fam family) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: fam.name, Help: fam.help}, fam.labels)
	}
	histograms := func(fam family, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: fam.name, Help: fam.help, Buckets: buckets,
			NativeHistogramBucketFactor: s.nativeFactor}, fam.labels)
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: s.build.name, Help: s.build.help}, s.build.labels)
	build.WithLabelValues((&labels{version: o.Version}).values(s.build)...).Set(1)
	f(build)
	m.requests = counters(s.requests)
	m.responses = counters(s.responses)
	m.duration = histograms(s.duration, timeBuckets)
	m.requestSize = histograms(s.requestSize, sizeBuckets)
	m.responseSize = histograms(s.responseSize, sizeBuckets)
	m.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "reload_total",
		Help: "Counter of Corefile reloads by status."}, []string{"status"})
	m.forwardDuration = histograms(s.upstreamDuration, timeBuckets)
	m.forwardRejects = prometheus.NewCounter(prometheus.CounterOpts{Name: s.forwardRejects.name, Help: s.forwardRejects.help})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "dns", Name: "ratelimited_total",
		Help: "Counter of UDP queries limited by ratelimit, by action: drop (no reply) or slip (an empty truncated reply)."}, []string{"action"})
	for _, c := range []prometheus.Collector{m.requests, m.responses, m.duration, m.requestSize, m.responseSize,
		m.Reloads, m.forwardDuration, m.forwardRejects, m.rateLimited} {
		f(c)
	}
	if s.do.name != "" {
		m.do = counters(s.do)
		f(m.do)
	}
	if s.pluginEnabled.name != "" {
		m.enabled = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: s.pluginEnabled.name, Help: s.pluginEnabled.help}, s.pluginEnabled.labels)
		f(m.enabled)
	}
	if s.reloadFailed.name != "" {
		m.reloadFailed = prometheus.NewCounter(prometheus.CounterOpts{Name: s.reloadFailed.name, Help: s.reloadFailed.help})
		f(m.reloadFailed)
	}
	if s.reloadVersion.name != "" {
		m.reloadVersion = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: s.reloadVersion.name, Help: s.reloadVersion.help}, s.reloadVersion.labels)
		f(m.reloadVersion)
	}
	if s.forwardBroken.name != "" {
		m.forwardBroken = prometheus.NewCounter(prometheus.CounterOpts{Name: s.forwardBroken.name, Help: s.forwardBroken.help})
		f(m.forwardBroken)
	}
	return m
}

// PluginsEnabled records that the directives names handle the queries of
// zones on servers (coredns_plugin_enabled; nothing in svcdisc's naming).
func (m *Metrics) PluginsEnabled(servers, zones, names []string) {
	if m.enabled == nil {
		return
	}
	for _, server := range servers {
		for _, zone := range zones {
			for _, name := range names {
				m.enabled.WithLabelValues((&labels{server: server, zone: zone, name: name}).values(m.s.pluginEnabled)...).Set(1)
			}
		}
	}
}

// CountReload counts a Corefile reload by status, "success" or "failed".
func (m *Metrics) CountReload(status string) {
	m.Reloads.WithLabelValues(status).Inc()
	if status == "failed" && m.reloadFailed != nil {
		m.reloadFailed.Inc()
	}
}

// CorefileVersion records the SHA-512 of the Corefile being watched by
// reload (coredns_reload_version_info; nothing in svcdisc's naming).
func (m *Metrics) CorefileVersion(corefile []byte) {
	if m.reloadVersion == nil {
		return
	}
	sum := sha512.Sum512(corefile)
	m.reloadVersion.Reset()
	m.reloadVersion.WithLabelValues((&labels{hash: "sha512", value: hex.EncodeToString(sum[:])}).values(m.s.reloadVersion)...).Set(1)
}

// Register adds c to the registry once: a collector that is already there
// (two server blocks describing the same series) is not an error.
func (m *Metrics) Register(c prometheus.Collector) error {
	err := m.Registry.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		return nil
	}
	return err
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	return mux
}

// typeLabel is a query type's label value: its name when the naming
// monitors it, "other" otherwise, which keeps the label's cardinality
// bounded whatever clients send (CoreDNS does the same).
func (m *Metrics) typeLabel(qtype uint16) string {
	if m.s.types[qtype] {
		return dns.TypeToString[qtype]
	}
	return "other"
}

// rcodeLabel is an rcode's label value: its name, or its number.
func rcodeLabel(rcode int) string {
	if s := dns.RcodeToString[rcode]; s != "" {
		return s
	}
	return strconv.Itoa(rcode)
}

// replyRcode is the rcode label of reply m. Rcode 16 is BADVERS in a reply
// with an OPT (RFC 6891) and BADSIG only in a TSIG record, which miekg/dns's
// table names.
func replyRcode(m *dns.Msg) string {
	if m.Rcode == dns.RcodeBadVers && m.IsEdns0() != nil {
		return "BADVERS"
	}
	return rcodeLabel(m.Rcode)
}

// Observer returns the resolver.Observer that records a server's queries;
// server labels them ("dns://:53" in CoreDNS's form).
func (m *Metrics) Observer(server string) resolver.Observer {
	return func(w dns.ResponseWriter, r, resp *dns.Msg, b *resolver.Block, by string, size int, d time.Duration) {
		l := labels{server: server, zone: "dropped", qtype: "other", rcode: replyRcode(resp), plugin: by}
		if len(r.Question) == 1 {
			if b != nil {
				l.zone = b.ZoneOf(r.Question[0].Name)
			}
			l.qtype = m.typeLabel(r.Question[0].Qtype)
		}
		l.proto, l.family = "udp", "1"
		bufsize := dns.MinMsgSize
		opt := r.IsEdns0()
		switch a := w.RemoteAddr().(type) {
		case *net.UDPAddr:
			if a.IP.To4() == nil {
				l.family = "2"
			}
			if opt != nil {
				bufsize = int(opt.UDPSize())
			}
		case *net.TCPAddr:
			l.proto, bufsize = "tcp", dns.MaxMsgSize
			if a.IP.To4() == nil {
				l.family = "2"
			}
		}
		reqLen := 0
		if m.s.requestLength {
			reqLen = r.Len()
		}
		m.meter(&l).Observe(reqLen, bufsize, size, opt != nil && opt.Do(), d)
	}
}

// Meters returns the resolver.Meters of a server: the same metrics as its
// Observer records, with the labels of each kind of answer looked up once.
func (m *Metrics) Meters(server string) resolver.Meters {
	return func(b *resolver.Block, zone string, qtype uint16, rcode int, by, proto string, v6 bool) resolver.Meter {
		l := labels{server: server, zone: zone, proto: proto, family: "1", qtype: m.typeLabel(qtype), rcode: rcodeLabel(rcode), plugin: by}
		if v6 {
			l.family = "2"
		}
		return m.meter(&l)
	}
}

// meter looks up the series of one kind of query.
func (m *Metrics) meter(l *labels) *meter {
	mt := &meter{
		requests:      m.requests.WithLabelValues(l.values(m.s.requests)...),
		responses:     m.responses.WithLabelValues(l.values(m.s.responses)...),
		duration:      m.duration.WithLabelValues(l.values(m.s.duration)...),
		requestSize:   m.requestSize.WithLabelValues(l.values(m.s.requestSize)...),
		responseSize:  m.responseSize.WithLabelValues(l.values(m.s.responseSize)...),
		requestLength: m.s.requestLength,
	}
	if m.do != nil {
		mt.do = m.do.WithLabelValues(l.values(m.s.do)...)
	}
	return mt
}

type meter struct {
	requests, responses                 prometheus.Counter
	do                                  prometheus.Counter // nil when not counted
	duration, requestSize, responseSize prometheus.Observer
	requestLength                       bool
}

func (m *meter) Observe(reqLen, bufsize, size int, do bool, d time.Duration) {
	m.requests.Inc()
	m.responses.Inc()
	if do && m.do != nil {
		m.do.Inc()
	}
	m.duration.Observe(d.Seconds())
	if m.requestLength {
		m.requestSize.Observe(float64(reqLen))
	} else {
		m.requestSize.Observe(float64(bufsize))
	}
	m.responseSize.Observe(float64(size))
}

// ObserveUpstream records one exchange with an upstream; it is the forward
// package's OnExchange hook.
func (m *Metrics) ObserveUpstream(upstream string, rcode int, d time.Duration, err error) {
	l := labels{to: upstream, rcode: "error"}
	if err == nil {
		l.rcode = rcodeLabel(rcode)
	} else if !m.s.upstreamErrors {
		return
	}
	m.forwardDuration.WithLabelValues(l.values(m.s.upstreamDuration)...).Observe(d.Seconds())
}

// RateLimited returns the resolver.RateLimit OnLimit hook that counts
// limited queries. The counters are looked up once: the hook runs on the
// UDP read loop and must not allocate.
func (m *Metrics) RateLimited() func(slipped bool) {
	drop, slip := m.rateLimited.WithLabelValues("drop"), m.rateLimited.WithLabelValues("slip")
	return func(slipped bool) {
		if slipped {
			slip.Inc()
		} else {
			drop.Inc()
		}
	}
}

// CountRejects wraps an upstream so that queries it sheds because of
// max_concurrent are counted, and in CoreDNS's naming those that found
// every upstream down.
func (m *Metrics) CountRejects(u pforward.Upstream) pforward.Upstream {
	return rejectCounter{u, m.forwardRejects, m.forwardBroken}
}

type rejectCounter struct {
	pforward.Upstream
	rejects, broken prometheus.Counter // broken may be nil
}

func (r rejectCounter) Exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	resp, err := r.Upstream.Exchange(ctx, req)
	switch {
	case errors.Is(err, forward.ErrLimit):
		r.rejects.Inc()
	case errors.Is(err, forward.ErrNoHealthy) && r.broken != nil:
		r.broken.Inc()
	}
	return resp, err
}
