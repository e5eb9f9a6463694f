// Package cache is the cache directive's handler: it answers the names of
// its zones from package svcdisc/cache when it can, and otherwise asks the
// next handlers and keeps what the upstream (forward) said, handing on the
// first answer with the TTLs the cache will serve. Answers made in memory
// (the cluster zones, hosts, template) are not kept: they cost nothing to
// make again, and a change must not hide behind a cache TTL. A SERVFAIL
// forward makes itself (the upstream could not be reached) is not kept
// either, as in CoreDNS, where forward writes no reply on failure; one the
// upstream sent is.
//
// With serve_stale, an expired entry is served at once and refreshed in
// the background (immediate), or only after the upstream failed to give a
// NOERROR or NXDOMAIN, within VerifyTimeout when set (verify).
package cache
