// Package kubernetes is the kubernetes directive's handler: it answers the
// names of the cluster zones from a zones.Zone (Services, endpoints, pods,
// PTRs, the apex), authoritatively, with CNAME chasing inside the zones and
// NODATA or NXDOMAIN carrying the SOA, and hands on what it does not cover
// or what falls through.
package kubernetes
