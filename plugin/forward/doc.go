// Package forward is the forward directive's handler: it sends the names of
// its FROM zone (but those of its except zones) to upstream resolvers and
// copies their answer into the reply. The upstreams themselves (policies,
// health checks, TCP retry, TLS) are package svcdisc/forward's.
package forward
