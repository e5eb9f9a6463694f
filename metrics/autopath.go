package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// autopathMetrics are the counters of the autopath directive, in both
// namings: svcdisc_autopath_total{server,result} and
// svcdisc_dns_search_expansions_total{server}, which CoreDNS lacks, and in
// CoreDNS's naming also coredns_autopath_success_total{server} (its one
// autopath metric: the completed queries).
type autopathMetrics struct {
	once       sync.Once
	results    *prometheus.CounterVec
	expansions *prometheus.CounterVec
	success    *prometheus.CounterVec // nil in svcdisc's naming
}

// AutoPath returns the counters of the autopath of the block served on
// servers: count takes a result (completed, not_found, skipped), expanded
// counts one name of a client's search path looked up for it.
func (m *Metrics) AutoPath(servers []string) (count func(result string), expanded func()) {
	a := &m.autopath
	a.once.Do(func() {
		a.results = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "autopath_total",
			Help: "Counter of queries autopath considered (their name is NXDOMAIN as asked), by result: completed, not_found or skipped."},
			[]string{"server", "result"})
		a.expansions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "dns", Name: "search_expansions_total",
			Help: "Counter of the names of clients' search paths that autopath looked up on their behalf."}, []string{"server"})
		m.Registry.MustRegister(a.results, a.expansions)
		if m.s == schemes[CoreDNS] {
			a.success = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coredns_autopath_success_total",
				Help: "Counter of requests that did autopath."}, []string{"server"})
			m.Registry.MustRegister(a.success)
		}
	})
	server := ""
	if len(servers) > 0 {
		server = servers[0]
	}
	count = func(result string) {
		a.results.WithLabelValues(server, result).Inc()
		if a.success != nil && result == "completed" {
			a.success.WithLabelValues(server).Inc()
		}
	}
	return count, a.expansions.WithLabelValues(server).Inc
}
