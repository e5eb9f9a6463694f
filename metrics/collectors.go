package metrics

import (
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

// cacheCollector reports a cache's size and counters under CoreDNS's names.
type cacheCollector struct {
	c                                                 *cache.Cache
	entries, hits, misses, prefetch, stale, evictions *prometheus.Desc
}

// NewCacheCollector reports the cache c of a server for zones.
func NewCacheCollector(server, zoneNames string, c *cache.Cache) prometheus.Collector {
	l := prometheus.Labels{"server": server, "zones": zoneNames}
	d := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_cache_"+name, help, variable, l)
	}
	return &cacheCollector{c: c,
		entries:   d("entries", "The number of elements in the cache.", "type"),
		hits:      d("hits_total", "The count of cache hits."),
		misses:    d("misses_total", "The count of cache misses."),
		prefetch:  d("prefetch_total", "The number of times the cache has prefetched a cached item."),
		stale:     d("served_stale_total", "The number of requests served from stale cache entries."),
		evictions: d("evictions_total", "The count of cache evictions.", "type"),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.entries, c.hits, c.misses, c.prefetch, c.stale, c.evictions} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.c.Stats()
	success, denial := c.c.Len()
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(success), "success")
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(denial), "denial")
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.prefetch, prometheus.CounterValue, float64(s.Prefetches))
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.CounterValue, float64(s.StaleServed))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.SuccessEvictions), "success")
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.DenialEvictions), "denial")
}

// forwardCollector reports each upstream's counters and health.
type forwardCollector struct {
	fs                          []*forward.Forwarder
	requests, failures, healthy *prometheus.Desc
}

// NewForwardCollector reports the upstreams of every forward directive of
// a configuration. An upstream named by several directives is one series:
// its counts added up, healthy only while it is healthy in all of them.
func NewForwardCollector(fs ...*forward.Forwarder) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_forward_"+name, help, []string{"to"}, nil)
	}
	return &forwardCollector{fs: fs,
		requests: d("requests_total", "Counter of requests made per upstream."),
		failures: d("failures_total", "Counter of requests per upstream that got no usable reply."),
		healthy:  d("healthy", "1 while the upstream is healthy, 0 while it is marked down."),
	}
}

func (c *forwardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.failures
	ch <- c.healthy
}

func (c *forwardCollector) Collect(ch chan<- prometheus.Metric) {
	type sum struct {
		requests, failures uint64
		healthy            bool
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
	}
}
