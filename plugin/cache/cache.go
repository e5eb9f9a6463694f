package cache

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/plugin/forward"
)

// Name is the directive's name.
const Name = "cache"

// Handler keeps upstream answers for the names of its zones.
type Handler struct {
	Zones plugin.Zones
	Cache *cache.Cache
	// Skip reports names that a handler after this one answers from
	// memory (the cluster zones): those are never kept, so they are not
	// looked up either.
	Skip func(name string) bool
	// PrefetchTimeout bounds a prefetch's trip down the chain.
	PrefetchTimeout time.Duration
	Next            plugin.Handler
}

// Name implements plugin.Handler.
func (c *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler.
func (c *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	if c.Zones.Matches(st.Name) == "" || c.Skip != nil && c.Skip(st.Name) {
		return plugin.Next(ctx, c.Next, st)
	}
	if resp, hit := c.Cache.Get(st.Req); hit&^cache.Prefetch == cache.Fresh {
		if hit&cache.Prefetch != 0 {
			go c.prefetch(st.Req.Copy(), st)
		}
		st.By = Name
		return forward.UpstreamReply(st.Reply(), resp)
	}
	m := plugin.Next(ctx, c.Next, st)
	if st.By != forward.Name {
		return m
	}
	if st.Err != nil {
		if stale := c.Cache.GetStale(st.Req); stale != nil {
			st.By, st.Err = Name, nil
			return forward.UpstreamReply(st.Reply(), stale)
		}
		return m
	}
	c.Cache.Set(st.Req, m)
	return m
}

// prefetch refreshes a popular entry before it expires.
func (c *Handler) prefetch(r *dns.Msg, orig *plugin.State) {
	timeout := c.PrefetchTimeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st := plugin.NewState(r, orig.Zone, orig.Remote, orig.Proto)
	m := plugin.Next(ctx, c.Next, st)
	if st.By == forward.Name && st.Err == nil {
		c.Cache.Set(r, m)
	}
}

var _ plugin.Handler = (*Handler)(nil)
