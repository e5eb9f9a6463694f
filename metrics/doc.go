// Package metrics owns svcdisc's Prometheus metrics: an explicit registry,
// the DNS request/response metrics the resolver reports, and collectors for
// the zones, the cache and the upstreams. The metrics CoreDNS also has are
// named as Options.Names says, from one table per naming (names.go):
// svcdisc's (coredns_dns_requests_total → svcdisc_dns_requests_total) or
// CoreDNS v1.14.7's own names and labels, so that its dashboards and alerts
// work unchanged. Metrics CoreDNS lacks keep svcdisc_ names in both.
package metrics
