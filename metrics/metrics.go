package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
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

// Metrics is the registry and the metrics svcdisc updates directly.
type Metrics struct {
	Registry *prometheus.Registry

	requests     *prometheus.CounterVec
	responses    *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	requestSize  *prometheus.HistogramVec
	responseSize *prometheus.HistogramVec

	// Reloads counts Corefile reloads by status ("success", "failed").
	Reloads *prometheus.CounterVec
	// forwardDuration times each exchange with an upstream; forwardRejects
	// counts queries shed by max_concurrent.
	forwardDuration *prometheus.HistogramVec
	forwardRejects  prometheus.Counter
	// rateLimited counts UDP queries the ratelimit directive refused an
	// answer, by action: "drop" (no reply) or "slip" (an empty TC reply).
	rateLimited *prometheus.CounterVec
}

// sizeBuckets are CoreDNS's buckets for message sizes.
var sizeBuckets = []float64{0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000}

// New registers svcdisc's metrics, the Go runtime's and the process's on a
// fresh registry.
func New(version string) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.Registry.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help: "A metric with a constant '1' value labeled by version and goversion from which svcdisc was built."}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	f(build)
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "dns", Name: "requests_total",
		Help: "Counter of DNS requests made per zone, protocol and family."}, []string{"server", "zone", "proto", "family", "type"})
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "dns", Name: "responses_total",
		Help: "Counter of response status codes."}, []string{"server", "zone", "rcode", "plugin"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "dns", Name: "request_duration_seconds",
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16), Help: "Histogram of the time (in seconds) each request took per zone."},
		[]string{"server", "zone", "type"})
	m.requestSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "dns", Name: "request_size_bytes",
		Buckets: sizeBuckets, Help: "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol."}, []string{"server", "zone", "proto"})
	m.responseSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "dns", Name: "response_size_bytes",
		Buckets: sizeBuckets, Help: "Size of the returned response in bytes."}, []string{"server", "zone", "proto"})
	m.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "reload_total",
		Help: "Counter of Corefile reloads by status."}, []string{"status"})
	m.forwardDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "forward", Name: "request_duration_seconds",
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16), Help: "Histogram of the time each request to an upstream took."}, []string{"to", "rcode"})
	m.forwardRejects = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "forward", Name: "max_concurrent_rejects_total",
		Help: "Counter of the number of queries rejected because max_concurrent was reached."})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "dns", Name: "ratelimited_total",
		Help: "Counter of UDP queries limited by ratelimit, by action: drop (no reply) or slip (an empty truncated reply)."}, []string{"action"})
	for _, c := range []prometheus.Collector{m.requests, m.responses, m.duration, m.requestSize, m.responseSize,
		m.Reloads, m.forwardDuration, m.forwardRejects, m.rateLimited} {
		f(c)
	}
	return m
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

// knownTypes are the query types that get their own label value; the rest
// are "other", which keeps the label's cardinality bounded whatever clients
// send (CoreDNS does the same).
var knownTypes = map[uint16]bool{
	dns.TypeA: true, dns.TypeAAAA: true, dns.TypeSRV: true, dns.TypePTR: true, dns.TypeCNAME: true, dns.TypeTXT: true,
	dns.TypeMX: true, dns.TypeNS: true, dns.TypeSOA: true, dns.TypeHTTPS: true, dns.TypeSVCB: true, dns.TypeANY: true,
	dns.TypeDS: true, dns.TypeDNSKEY: true, dns.TypeNAPTR: true, dns.TypeCAA: true, dns.TypeAXFR: true, dns.TypeIXFR: true,
}

// typeLabel is a query type's label value: its name when known, "other"
// otherwise.
func typeLabel(qtype uint16) string {
	if knownTypes[qtype] {
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

// Observer returns the resolver.Observer that records a server's queries;
// server labels them ("dns://:53" in CoreDNS's form).
func (m *Metrics) Observer(server string) resolver.Observer {
	return func(w dns.ResponseWriter, r, resp *dns.Msg, b *resolver.Block, by string, size int, d time.Duration) {
		zone := "dropped"
		qtype := "other"
		if len(r.Question) == 1 {
			if b != nil {
				zone = b.ZoneOf(r.Question[0].Name)
			}
			qtype = typeLabel(r.Question[0].Qtype)
		}
		proto, family, bufsize := "udp", "1", dns.MinMsgSize
		switch a := w.RemoteAddr().(type) {
		case *net.UDPAddr:
			if a.IP.To4() == nil {
				family = "2"
			}
			if opt := r.IsEdns0(); opt != nil {
				bufsize = int(opt.UDPSize())
			}
		case *net.TCPAddr:
			proto, bufsize = "tcp", dns.MaxMsgSize
			if a.IP.To4() == nil {
				family = "2"
			}
		}
		m.requests.WithLabelValues(server, zone, proto, family, qtype).Inc()
		m.responses.WithLabelValues(server, zone, rcodeLabel(resp.Rcode), by).Inc()
		m.duration.WithLabelValues(server, zone, qtype).Observe(d.Seconds())
		m.requestSize.WithLabelValues(server, zone, proto).Observe(float64(bufsize))
		m.responseSize.WithLabelValues(server, zone, proto).Observe(float64(size))
	}
}

// Meters returns the resolver.Meters of a server: the same metrics as its
// Observer records, with the labels of each kind of answer looked up once.
func (m *Metrics) Meters(server string) resolver.Meters {
	return func(b *resolver.Block, zone string, qtype uint16, rcode int, by, proto string, v6 bool) resolver.Meter {
		qt, rc := typeLabel(qtype), rcodeLabel(rcode)
		family := "1"
		if v6 {
			family = "2"
		}
		return &meter{
			requests:     m.requests.WithLabelValues(server, zone, proto, family, qt),
			responses:    m.responses.WithLabelValues(server, zone, rc, by),
			duration:     m.duration.WithLabelValues(server, zone, qt),
			requestSize:  m.requestSize.WithLabelValues(server, zone, proto),
			responseSize: m.responseSize.WithLabelValues(server, zone, proto),
		}
	}
}

type meter struct {
	requests, responses                 prometheus.Counter
	duration, requestSize, responseSize prometheus.Observer
}

func (m *meter) Observe(bufsize, size int, d time.Duration) {
	m.requests.Inc()
	m.responses.Inc()
	m.duration.Observe(d.Seconds())
	m.requestSize.Observe(float64(bufsize))
	m.responseSize.Observe(float64(size))
}

// ObserveUpstream records one exchange with an upstream; it is the forward
// package's OnExchange hook.
func (m *Metrics) ObserveUpstream(upstream string, rcode int, d time.Duration, err error) {
	label := "error"
	if err == nil {
		label = rcodeLabel(rcode)
	}
	m.forwardDuration.WithLabelValues(upstream, label).Observe(d.Seconds())
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
// max_concurrent are counted.
func (m *Metrics) CountRejects(u pforward.Upstream) pforward.Upstream {
	return rejectCounter{u, m.forwardRejects}
}

type rejectCounter struct {
	pforward.Upstream
	rejects prometheus.Counter
}

func (r rejectCounter) Exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	resp, err := r.Upstream.Exchange(ctx, req)
	if errors.Is(err, forward.ErrLimit) {
		r.rejects.Inc()
	}
	return resp, err
}
