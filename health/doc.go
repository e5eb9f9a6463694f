// Package health owns svcdisc's HTTP probe endpoints: /ready, which says
// whether every zone has its first complete view of the cluster (the
// readinessProbe of a svcdisc Deployment).
package health
