package resolver

import (
	"time"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/plugin/bufsize"
	pcache "github.com/svcdisc/svcdisc/plugin/cache"
	pforward "github.com/svcdisc/svcdisc/plugin/forward"
	"github.com/svcdisc/svcdisc/plugin/kubernetes"
	"github.com/svcdisc/svcdisc/plugin/loadbalance"
)

// The chains of the tests are built as cmd/svcdisc builds them, in
// CoreDNS's order: loadbalance, cache, kubernetes, forward. Add forward
// first, then cache, then loadbalance.

// withForward hands the names h's cluster zone does not answer to up.
func withForward(h *Handler, up pforward.Upstream, except ...string) {
	k := h.blocks[0].block.Chain.(*kubernetes.Handler)
	k.Next = &pforward.Handler{From: ".", Except: except, Upstream: up, Timeout: time.Second}
}

// withCache puts c in front of h's chain.
func withCache(h *Handler, c *cache.Cache) {
	b := h.blocks[0].block
	z := b.Zone
	b.Chain = &pcache.Handler{Zones: []string{"."}, Cache: c, Next: b.Chain,
		Skip: func(name string) bool { return z.Match(name) != "" }}
}

// withLoadBalance turns loadbalance on or off in front of h's chain.
func withLoadBalance(h *Handler, on bool) {
	b := h.blocks[0].block
	lb, has := b.Chain.(*loadbalance.Handler)
	switch {
	case on && !has:
		b.Chain = &loadbalance.Handler{Next: b.Chain}
	case !on && has:
		b.Chain = lb.Next
	}
}

// withBufSize puts bufsize in front of h's chain.
func withBufSize(h *Handler, size int) {
	b := h.blocks[0].block
	b.Chain = &bufsize.Handler{Size: size, Next: b.Chain}
}
