package cache

import (
	"context"
	"sync"
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
	// StaleVerify is serve_stale's verify mode: an expired entry is
	// served only once the upstream failed to give a fresh answer. Off
	// (immediate), an expired entry is served at once and refreshed in
	// the background.
	StaleVerify bool
	// VerifyTimeout, when positive, bounds how long verify mode waits for
	// the upstream before it serves the expired entry; the query goes on
	// in the background and its answer is kept.
	VerifyTimeout time.Duration
	// PrefetchTimeout bounds a background trip down the chain (prefetch,
	// stale refresh, a verify that outlived VerifyTimeout); 2 s when 0.
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
			go c.refresh(plugin.NewState(st.Req.Copy(), st.Zone, st.Remote, st.Proto), false)
		}
		st.By = Name
		return forward.UpstreamReply(st.Reply(), resp)
	}
	if !c.StaleVerify {
		if resp, hit := c.Cache.GetStale(st.Req); resp != nil {
			if hit&cache.Prefetch != 0 {
				go c.refresh(plugin.NewState(st.Req.Copy(), st.Zone, st.Remote, st.Proto), hit&^cache.Prefetch == cache.Stale)
			}
			st.By = Name
			return forward.UpstreamReply(st.Reply(), resp)
		}
	}
	m, stale := c.next(ctx, st)
	if stale != nil {
		return stale
	}
	if st.By != forward.Name {
		return m
	}
	if st.Err != nil || c.StaleVerify && !refreshes(m) {
		if resp, _ := c.Cache.GetStale(st.Req); resp != nil {
			st.By, st.Err = Name, nil
			return forward.UpstreamReply(st.Reply(), resp)
		}
		if st.Err != nil {
			return m // forward's own SERVFAIL: CoreDNS does not cache it either
		}
	}
	return c.Cache.Set(st.Req, m)
}

// refreshes reports whether m may replace an expired entry in verify mode
// (RFC 8767 section 4): a complete NOERROR or NXDOMAIN.
func refreshes(m *dns.Msg) bool {
	return !m.Truncated && (m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError)
}

// next hands st on. In verify mode with a VerifyTimeout, the trip runs on
// its own state; should it take longer and an expired entry exist, next
// returns that entry as stale (st made by the cache) and the trip goes on
// in the background, its answer kept when it refreshes the entry.
func (c *Handler) next(ctx context.Context, st *plugin.State) (m, stale *dns.Msg) {
	if !c.StaleVerify || c.VerifyTimeout <= 0 {
		return plugin.Next(ctx, c.Next, st), nil
	}
	bg := *st
	bg.Req = st.Req.Copy()
	var (
		mu        sync.Mutex
		abandoned bool
	)
	done := make(chan *dns.Msg, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout())
		defer cancel()
		m := plugin.Next(ctx, c.Next, &bg)
		mu.Lock()
		if !abandoned {
			done <- m // buffered: never blocks
			mu.Unlock()
			return
		}
		mu.Unlock()
		if bg.By == forward.Name && bg.Err == nil && refreshes(m) {
			c.Cache.Set(bg.Req, m)
		}
	}()
	timer := time.NewTimer(c.VerifyTimeout)
	defer timer.Stop()
	select {
	case m := <-done:
		return c.adopt(st, &bg, m), nil
	case <-timer.C:
	}
	resp, _ := c.Cache.GetStale(st.Req)
	if resp == nil {
		return c.adopt(st, &bg, <-done), nil
	}
	mu.Lock()
	select {
	case m := <-done: // finished meanwhile
		mu.Unlock()
		return c.adopt(st, &bg, m), nil
	default:
		abandoned = true
	}
	mu.Unlock()
	st.By, st.Err = Name, nil
	return nil, forward.UpstreamReply(st.Reply(), resp)
}

// adopt takes over what the handlers after this one learned on bg.
func (c *Handler) adopt(st, bg *plugin.State, m *dns.Msg) *dns.Msg {
	*st = *bg
	return m
}

func (c *Handler) timeout() time.Duration {
	if c.PrefetchTimeout == 0 {
		return 2 * time.Second
	}
	return c.PrefetchTimeout
}

// refresh asks again for an entry in the background, on st of its own: a popular one about
// to expire (prefetch) or, with stale set, an expired one just served
// stale, which only a NOERROR or NXDOMAIN replaces.
func (c *Handler) refresh(st *plugin.State, stale bool) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	r := st.Req
	m := plugin.Next(ctx, c.Next, st)
	if st.By == forward.Name && st.Err == nil && (!stale || refreshes(m)) {
		c.Cache.Set(r, m)
	}
}

var _ plugin.Handler = (*Handler)(nil)
