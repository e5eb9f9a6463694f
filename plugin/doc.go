// Package plugin owns the shape of a server block's query path: an ordered
// chain of small handlers, one per Corefile directive, as in CoreDNS. A
// handler answers a query or hands it to the next one; the order they run
// in is the fixed list Order (CoreDNS's plugin.cfg), whatever order a
// Corefile writes them in.
//
// A directive that takes part in answering queries is a package under
// plugin/ with its setup (from a config.Directive), its handler and its
// tests; cmd/svcdisc wires the setups to the directive names. This package
// knows DNS messages only: no sockets, no Kubernetes, no caches.
package plugin
