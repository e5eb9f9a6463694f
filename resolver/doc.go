// Package resolver owns the server side of svcdisc's DNS: the miekg/dns
// handler that checks a query's header, picks the server block its name
// belongs to and runs that block's chain of handlers (package plugin), sizes
// the reply for the transport and the client's EDNS buffer, keeps plain
// cluster replies in wire form for the fast path, and the UDP+TCP server
// that runs it (TCP: each connection's queries answered concurrently, as
// RFC 7766 asks).
//
// It knows DNS, the chain and the zone index, not Kubernetes API objects and
// not any one directive: what answers a name is the chain's business.
package resolver
