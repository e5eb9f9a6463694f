// Package resolver owns the DNS side of svcdisc: the miekg/dns handler that
// picks the server block and zone a query belongs to, builds authoritative
// answers (with CNAME chasing, NODATA and NXDOMAIN carrying the SOA) from a
// zones.Zone, sizes responses for the transport and the client's EDNS buffer,
// and the UDP+TCP server that runs it.
//
// It knows DNS and the zone index, not Kubernetes API objects: everything it
// answers was built by package zones before the query arrived.
package resolver
