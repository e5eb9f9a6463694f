package metrics

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/forward"
	"github.com/svcdisc/svcdisc/zones"
)

// zoneCollector reports a cluster zone: its objects, names and sync state.
type zoneCollector struct {
	z                      *zones.Zone
	objects, names, synced *prometheus.Desc
}

// NewZoneCollector reports the zone z of a server.
func NewZoneCollector(server string, zoneNames []string, z *zones.Zone) prometheus.Collector {
	constLabels := prometheus.Labels{"server": "dns://" + server, "zones": strings.Join(zoneNames, " ")}
	return &zoneCollector{
		z: z,
		objects: prometheus.NewDesc(namespace+"_kubernetes_objects", "Kubernetes objects held by the cluster zone, by kind.",
			[]string{"kind"}, constLabels),
		names: prometheus.NewDesc(namespace+"_kubernetes_names", "Owner names in the cluster zone's index.", nil, constLabels),
		synced: prometheus.NewDesc(namespace+"_kubernetes_synced",
			"1 once the cluster zone has its first complete view of the cluster, 0 before.", nil, constLabels),
	}
}

func (c *zoneCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.objects
	ch <- c.names
	ch <- c.synced
}

func (c *zoneCollector) Collect(ch chan<- prometheus.Metric) {
	for kind, n := range c.z.Objects() {
		ch <- prometheus.MustNewConstMetric(c.objects, prometheus.GaugeValue, float64(n), strings.ToLower(kind.String()))
	}
	ch <- prometheus.MustNewConstMetric(c.names, prometheus.GaugeValue, float64(c.z.Names()))
	synced := 0.0
	if c.z.Synced() {
		synced = 1
	}
	ch <- prometheus.MustNewConstMetric(c.synced, prometheus.GaugeValue, synced)
}

// cacheCollector reports a cache's size and counters.
type cacheCollector struct {
	c                                                           *cache.Cache
	entries, requests, hits, misses, prefetch, stale, evictions desc
}

// desc is a family's Desc, nil when the naming does not export it.
type desc struct {
	family
	d *prometheus.Desc
}

// newDesc makes f's Desc. Its labels other than variable are constant,
// with their values from l: collectors of different servers then describe
// different series, and are registered side by side.
func newDesc(f family, l labels, variable ...string) desc {
	if f.name == "" {
		return desc{}
	}
	var vars []string
	constLabels := prometheus.Labels{}
	values := l.values(f)
	for i, n := range f.labels {
		if slices.Contains(variable, n) {
			vars = append(vars, n)
		} else {
			constLabels[n] = values[i]
		}
	}
	return desc{family{f.name, f.help, vars}, prometheus.NewDesc(f.name, f.help, vars, constLabels)}
}

// CacheCollector reports the cache c of a server for zones.
func (m *Metrics) CacheCollector(server string, zones []string, c *cache.Cache) prometheus.Collector {
	s, l := m.s, labels{server: server, zones: strings.Join(zones, m.s.zonesSep)}
	d := func(f family) desc { return newDesc(f, l, "type") }
	return &cacheCollector{c: c,
		entries: d(s.cacheEntries), requests: d(s.cacheRequests), hits: d(s.cacheHits), misses: d(s.cacheMisses),
		prefetch: d(s.cachePrefetch), stale: d(s.cacheStale), evictions: d(s.cacheEvictions),
	}
}

func (c *cacheCollector) all() []desc {
	return []desc{c.entries, c.requests, c.hits, c.misses, c.prefetch, c.stale, c.evictions}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.all() {
		if d.d != nil {
			ch <- d.d
		}
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.c.Stats()
	success, denial := c.c.Len()
	emit := func(d desc, t prometheus.ValueType, v float64, kind string) {
		if d.d == nil {
			return
		}
		l := labels{kind: kind}
		ch <- prometheus.MustNewConstMetric(d.d, t, v, l.values(d.family)...)
	}
	emit(c.entries, prometheus.GaugeValue, float64(success), "success")
	emit(c.entries, prometheus.GaugeValue, float64(denial), "denial")
	emit(c.requests, prometheus.CounterValue, float64(s.Hits+s.Misses), "")
	if c.hits.has("type") {
		emit(c.hits, prometheus.CounterValue, float64(s.Hits-s.DenialHits), "success")
		emit(c.hits, prometheus.CounterValue, float64(s.DenialHits), "denial")
	} else {
		emit(c.hits, prometheus.CounterValue, float64(s.Hits), "")
	}
	emit(c.misses, prometheus.CounterValue, float64(s.Misses), "")
	emit(c.prefetch, prometheus.CounterValue, float64(s.Prefetches), "")
	emit(c.stale, prometheus.CounterValue, float64(s.StaleServed), "")
	emit(c.evictions, prometheus.CounterValue, float64(s.SuccessEvictions), "success")
	emit(c.evictions, prometheus.CounterValue, float64(s.DenialEvictions), "denial")
}

// forwardCollector reports each upstream's counters and health.
type forwardCollector struct {
	fs                          []*forward.Forwarder
	requests, failures, healthy *prometheus.Desc
	probeFailures               desc
}

// ForwardCollector reports the upstreams of every forward directive of
// a configuration. An upstream named by several directives is one series:
// its counts added up, healthy only while it is healthy in all of them.
func (m *Metrics) ForwardCollector(fs ...*forward.Forwarder) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_forward_"+name, help, []string{"to"}, nil)
	}
	return &forwardCollector{fs: fs,
		requests:      d("requests_total", "Counter of requests made per upstream."),
		failures:      d("failures_total", "Counter of requests per upstream that got no usable reply."),
		healthy:       d("healthy", "1 while the upstream is healthy, 0 while it is marked down."),
		probeFailures: newDesc(m.s.upstreamProbeFailures, labels{}, "proxy_name", "to"),
	}
}

func (c *forwardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.failures
	ch <- c.healthy
	if c.probeFailures.d != nil {
		ch <- c.probeFailures.d
	}
}

func (c *forwardCollector) Collect(ch chan<- prometheus.Metric) {
	type sum struct {
		requests, failures, probeFailures uint64
		healthy                           bool
	}
	var order []string
	sums := make(map[string]*sum)
	for _, f := range c.fs {
		for _, u := range f.Upstreams() {
			s := sums[u.Addr]
			if s == nil {
				s = &sum{healthy: true}
				sums[u.Addr] = s
				order = append(order, u.Addr)
			}
			s.requests += u.Requests
			s.failures += u.Failures
			s.probeFailures += u.ProbeFailures
			s.healthy = s.healthy && u.Healthy
		}
	}
	for _, addr := range order {
		s := sums[addr]
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(s.requests), addr)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(s.failures), addr)
		healthy := 0.0
		if s.healthy {
			healthy = 1
		}
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, healthy, addr)
		if c.probeFailures.d != nil {
			l := labels{to: addr}
			ch <- prometheus.MustNewConstMetric(c.probeFailures.d, prometheus.CounterValue, float64(s.probeFailures),
				l.values(c.probeFailures.family)...)
		}
	}
}
