package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// autopathMetrics are the counters of the autopath directive, in both
// namings: svcdisc_autopath_total{server,result}, which CoreDNS lacks, and
// in CoreDNS's naming also coredns_autopath_success_total{server} (its one
// autopath metric: the completed queries).
type autopathMetrics struct {
	once    sync.Once
	results *prometheus.CounterVec
	success *prometheus.CounterVec // nil in svcdisc's naming
}

// AutoPath returns the counter of the autopath of the block served on
// servers, which takes a result (completed, not_found, skipped).
func (m *Metrics) AutoPath(servers []string) (count func(result string)) {
	a := &m.autopath
	a.once.Do(func() {
		a.results = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "autopath_total",
			Help: "Counter of queries autopath considered (their name is NXDOMAIN as asked), by result: completed, not_found or skipped."},
			[]string{"server", "result"})
		m.Registry.MustRegister(a.results)
		if m.s == schemes[CoreDNS] {
			a.success = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coredns_autopath_success_total",
				Help: "Counter of requests that did autopath."}, []string{"server"})
			m.Registry.MustRegister(a.success)
		}
	})
	server := firstServer(servers)
	return func(result string) {
		a.results.WithLabelValues(server, result).Inc()
		if a.success != nil && result == "completed" {
			a.success.WithLabelValues(server).Inc()
		}
	}
}

// SearchExpansions returns the counter of search-path expansions of the
// cluster zone of the block served on servers:
// svcdisc_dns_search_expansions_total{server}, in both namings (CoreDNS has
// no such metric). An expansion is a name below a cluster zone that does
// not exist, asked for a client: what a client with ndots:5 asks for each
// search domain before the name it meant, whether it asked it itself or
// autopath walked the path for it. Its rate against the requests' shows
// the search-path waste with or without autopath.
func (m *Metrics) SearchExpansions(servers []string) func() {
	m.expansionsOnce.Do(func() {
		m.expansions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "dns", Name: "search_expansions_total",
			Help: "Counter of the queries for names below a cluster zone that do not exist (NXDOMAIN): the search-path expansions of clients, asked by them or by autopath on their behalf."},
			[]string{"server"})
		m.Registry.MustRegister(m.expansions)
	})
	return m.expansions.WithLabelValues(firstServer(servers)).Inc
}

func firstServer(servers []string) string {
	if len(servers) > 0 {
		return servers[0]
	}
	return ""
}
