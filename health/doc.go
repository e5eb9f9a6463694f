// Package health owns svcdisc's HTTP probe endpoints: /health, which says
// the process serves (the livenessProbe), and /ready, which says whether
// every zone has its first complete view of the cluster and the server is
// not shutting down (the readinessProbe).
package health
