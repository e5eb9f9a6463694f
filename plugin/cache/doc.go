// Package cache is the cache directive's handler: it answers the names of
// its zones from package svcdisc/cache when it can, and otherwise asks the
// next handlers and keeps what the upstream (forward) said. Answers made in
// memory (the cluster zones, hosts, template) are not kept: they cost
// nothing to make again, and a change must not hide behind a cache TTL.
package cache
