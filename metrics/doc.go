// Package metrics owns svcdisc's Prometheus metrics: an explicit registry,
// the DNS request/response metrics the resolver reports, and collectors for
// the zones, the cache and the upstreams. Names follow CoreDNS's with the
// svcdisc_ prefix (coredns_dns_requests_total → svcdisc_dns_requests_total,
// same labels and units), so dashboards port over.
package metrics
