package metrics

import (
	"runtime"
	"runtime/debug"
	"slices"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Names is the naming of the metrics that CoreDNS also has: svcdisc's own
// (svcdisc_dns_requests_total...) or CoreDNS v1.14.7's, names and labels
// alike (coredns_dns_requests_total{server,zone,view,...}), so that
// dashboards and alerts written for CoreDNS work unchanged. Metrics
// CoreDNS lacks keep their svcdisc_ names in both.
type Names string

const (
	// SVCDisc names are svcdisc_*, the default.
	SVCDisc Names = "svcdisc"
	// CoreDNS names are CoreDNS's, with its labels.
	CoreDNS Names = "coredns"
)

// family is one metric family: its full name, help and label names, in
// the order their values are given. An empty name is a family the naming
// does not export.
type family struct {
	name, help string
	labels     []string
}

func (f family) has(label string) bool { return slices.Contains(f.labels, label) }

// scheme is everything that differs between two namings: the families and
// how some values are taken.
type scheme struct {
	requests, responses, duration, requestSize, responseSize family
	// do counts queries with the DO bit.
	do family
	// pluginEnabled is 1 for each directive handling queries in a block.
	pluginEnabled family
	build         family
	// reloadFailed counts failed reloads; reloadVersion is the Corefile's
	// hash while reload watches it.
	reloadFailed, reloadVersion family
	// upstreamDuration times exchanges with upstreams; upstreamProbeFailures
	// counts failed health probes; forwardRejects counts queries shed by
	// max_concurrent, forwardBroken those that found every upstream down.
	upstreamDuration, upstreamProbeFailures, forwardRejects, forwardBroken family
	cacheEntries, cacheRequests, cacheHits, cacheMisses                    family
	cachePrefetch, cacheStale, cacheEvictions                              family

	// types are the query types with a label value of their own; the
	// others are "other".
	types map[uint16]bool
	// requestLength: request_size_bytes observes the request's length
	// (as CoreDNS does, whatever its help text says) rather than the
	// client's buffer size.
	requestLength bool
	// upstreamErrors: failed exchanges are timed too, with rcode "error".
	upstreamErrors bool
	// nativeFactor is the native histograms' bucket factor, 0 for none.
	nativeFactor float64
	// zonesSep separates the zones of a cache's zones label.
	zonesSep string
}

// sizeBuckets are CoreDNS's buckets for message sizes.
var sizeBuckets = []float64{0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000}

// timeBuckets are CoreDNS's buckets for durations: 0.25 ms to 8 s.
var timeBuckets = prometheus.ExponentialBuckets(0.00025, 2, 16)

var schemes = map[Names]*scheme{
	SVCDisc: {
		requests: family{"svcdisc_dns_requests_total", "Counter of DNS requests made per zone, protocol and family.",
			[]string{"server", "zone", "proto", "family", "type"}},
		responses: family{"svcdisc_dns_responses_total", "Counter of response status codes.",
			[]string{"server", "zone", "rcode", "plugin"}},
		duration: family{"svcdisc_dns_request_duration_seconds", "Histogram of the time (in seconds) each request took per zone.",
			[]string{"server", "zone", "type"}},
		requestSize: family{"svcdisc_dns_request_size_bytes", "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
			[]string{"server", "zone", "proto"}},
		responseSize: family{"svcdisc_dns_response_size_bytes", "Size of the returned response in bytes.",
			[]string{"server", "zone", "proto"}},
		build: family{"svcdisc_build_info", "A metric with a constant '1' value labeled by version and goversion from which svcdisc was built.",
			[]string{"version"}},
		upstreamDuration: family{"svcdisc_forward_request_duration_seconds", "Histogram of the time each request to an upstream took.",
			[]string{"to", "rcode"}},
		forwardRejects: family{"svcdisc_forward_max_concurrent_rejects_total", "Counter of the number of queries rejected because max_concurrent was reached.", nil},
		cacheEntries:   family{"svcdisc_cache_entries", "The number of elements in the cache.", []string{"server", "zones", "type"}},
		cacheHits:      family{"svcdisc_cache_hits_total", "The count of cache hits.", []string{"server", "zones"}},
		cacheMisses:    family{"svcdisc_cache_misses_total", "The count of cache misses.", []string{"server", "zones"}},
		cachePrefetch: family{"svcdisc_cache_prefetch_total", "The number of times the cache has prefetched a cached item.",
			[]string{"server", "zones"}},
		cacheStale: family{"svcdisc_cache_served_stale_total", "The number of requests served from stale cache entries.",
			[]string{"server", "zones"}},
		cacheEvictions: family{"svcdisc_cache_evictions_total", "The count of cache evictions.", []string{"server", "zones", "type"}},
		types: typeSet(dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeCNAME, dns.TypeTXT, dns.TypeMX, dns.TypeNS,
			dns.TypeSOA, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeANY, dns.TypeDS, dns.TypeDNSKEY, dns.TypeNAPTR, dns.TypeCAA,
			dns.TypeAXFR, dns.TypeIXFR),
		upstreamErrors: true,
		zonesSep:       " ",
	},
	// CoreDNS v1.14.7: plugin/metrics/vars, plugin/cache, plugin/forward,
	// plugin/pkg/proxy, plugin/reload.
	CoreDNS: {
		requests: family{"coredns_dns_requests_total", "Counter of DNS requests made per zone, protocol and family.",
			[]string{"server", "zone", "view", "proto", "family", "type"}},
		responses: family{"coredns_dns_responses_total", "Counter of response status codes.",
			[]string{"server", "zone", "view", "rcode", "plugin"}},
		duration: family{"coredns_dns_request_duration_seconds", "Histogram of the time (in seconds) each request took per zone.",
			[]string{"server", "zone", "view"}},
		requestSize: family{"coredns_dns_request_size_bytes", "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
			[]string{"server", "zone", "view", "proto"}},
		responseSize: family{"coredns_dns_response_size_bytes", "Size of the returned response in bytes.",
			[]string{"server", "zone", "view", "proto"}},
		do: family{"coredns_dns_do_requests_total", "Counter of DNS requests with DO bit set per zone.",
			[]string{"server", "zone", "view"}},
		pluginEnabled: family{"coredns_plugin_enabled", "A metric that indicates whether a plugin is enabled on per server and zone basis.",
			[]string{"server", "zone", "view", "name"}},
		build: family{"coredns_build_info", "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
			[]string{"version", "revision", "goversion"}},
		reloadFailed: family{"coredns_reload_failed_total", "Counter of the number of failed reload attempts.", nil},
		reloadVersion: family{"coredns_reload_version_info", "A metric with a constant '1' value labeled by hash, and value which type of hash generated.",
			[]string{"hash", "value"}},
		upstreamDuration: family{"coredns_proxy_request_duration_seconds", "Histogram of the time each request took.",
			[]string{"proxy_name", "to", "rcode"}},
		upstreamProbeFailures: family{"coredns_proxy_healthcheck_failures_total", "Counter of the number of failed healthchecks.",
			[]string{"proxy_name", "to"}},
		forwardRejects: family{"coredns_forward_max_concurrent_rejects_total",
			"Counter of the number of queries rejected because the concurrent queries were at maximum.", nil},
		forwardBroken: family{"coredns_forward_healthcheck_broken_total", "Counter of the number of complete failures of the healthchecks.", nil},
		cacheEntries:  family{"coredns_cache_entries", "The number of elements in the cache.", []string{"server", "type", "zones", "view"}},
		cacheRequests: family{"coredns_cache_requests_total", "The count of cache requests.", []string{"server", "zones", "view"}},
		cacheHits:     family{"coredns_cache_hits_total", "The count of cache hits.", []string{"server", "type", "zones", "view"}},
		cacheMisses: family{"coredns_cache_misses_total", "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
			[]string{"server", "zones", "view"}},
		cachePrefetch: family{"coredns_cache_prefetch_total", "The number of times the cache has prefetched a cached item.",
			[]string{"server", "zones", "view"}},
		cacheStale: family{"coredns_cache_served_stale_total", "The number of requests served from stale cache entries.",
			[]string{"server", "zones", "view"}},
		cacheEvictions: family{"coredns_cache_evictions_total", "The count of cache evictions.", []string{"server", "type", "zones", "view"}},
		types: typeSet(dns.TypeAAAA, dns.TypeA, dns.TypeCNAME, dns.TypeDNSKEY, dns.TypeDS, dns.TypeMX, dns.TypeNSEC3, dns.TypeNSEC,
			dns.TypeNS, dns.TypePTR, dns.TypeRRSIG, dns.TypeSOA, dns.TypeSRV, dns.TypeTXT, dns.TypeHTTPS, dns.TypeSVCB,
			dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY),
		requestLength: true,
		nativeFactor:  1.05,
		zonesSep:      ",",
	},
}

func typeSet(types ...uint16) map[uint16]bool {
	m := make(map[uint16]bool, len(types))
	for _, t := range types {
		m[t] = true
	}
	return m
}

// labels are the values a family's labels are taken from, by name. view
// is always empty: svcdisc has no views.
type labels struct {
	server, zone, proto, family, qtype, rcode, plugin string
	to, zones, kind, name, hash, value                string
	version                                           string
}

// values returns the values of f's labels, in f's order.
func (l *labels) values(f family) []string {
	out := make([]string, len(f.labels))
	for i, n := range f.labels {
		switch n {
		case "server":
			out[i] = l.server
		case "zone":
			out[i] = l.zone
		case "view":
			out[i] = ""
		case "proto":
			out[i] = l.proto
		case "family":
			out[i] = l.family
		case "type":
			if l.kind != "" {
				out[i] = l.kind // a cache's success or denial
			} else {
				out[i] = l.qtype
			}
		case "rcode":
			out[i] = l.rcode
		case "plugin":
			out[i] = l.plugin
		case "proxy_name":
			out[i] = "forward"
		case "to":
			out[i] = l.to
		case "zones":
			out[i] = l.zones
		case "name":
			out[i] = l.name
		case "hash":
			out[i] = l.hash
		case "value":
			out[i] = l.value
		case "version":
			out[i] = l.version
		case "revision":
			out[i] = revision()
		case "goversion":
			out[i] = runtime.Version()
		}
	}
	return out
}

// revision is the VCS revision svcdisc was built from, if recorded.
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}
