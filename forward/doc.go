// Package forward owns svcdisc's forwarding of queries to upstream
// resolvers, with the semantics of CoreDNS's forward plugin: a list of
// upstream addresses (or the nameservers of a resolv.conf), plain DNS or
// DNS over TLS, a selection policy (random, round_robin, sequential), the
// client's transport (UDP with a TCP retry on truncation, or TCP; or TCP
// only), kept TCP and TLS connections (expire, max age, max idle), a
// per-query deadline over all attempts, failover on chosen rcodes, a limit
// on concurrent queries, and in-band health checking: a failed exchange
// starts ". IN NS" probes of that upstream, which is marked down after
// MaxFails failed probes in a row and up again on the first answer.
//
// It also owns what makes forwarding safe to expose: random query IDs and
// source ports on the wire, replies checked against the query (ID and
// question) before they are believed, identical in-flight queries sent
// upstream once, and the start-up check that refuses an upstream that is
// this server itself.
//
// It knows DNS and sockets, not Kubernetes, Corefiles or metrics: the
// resolver hands it queries, the configuration layer its Options, and the
// metrics layer observes it through Options.OnExchange and
// Forwarder.Upstreams.
package forward
