// Package autopath is the autopath directive's handler: server-side search
// path completion. A Pod's resolver (ndots:5) tries a short name under each
// of its search domains before the name itself, one NXDOMAIN after another;
// autopath, given the first of those queries, walks the rest of the search
// path itself and answers with a CNAME from the asked name to the first
// name that exists, followed by that name's answer, so the client stops
// after one query per type.
//
// The search path is a fixed one (a resolv.conf file) or the client Pod's
// (@kubernetes): <ns>.svc.<zone>, svc.<zone>, <zone>, the host's search
// domains, found from the query's source address with zones.Zone's client
// index. A query is completed only when its own answer is NXDOMAIN, its
// name ends in the client's first search domain, and the client is known
// beyond doubt (one Running Pod off the host network holds the address);
// anything else is answered as asked. Completed answers depend on the
// client, so they are never kept by the wire fast path or the cache.
package autopath
