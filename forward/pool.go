package forward

import (
	"net"
	"sync"
	"time"
)

// pool keeps an upstream's idle TCP and TLS connections for reuse, as
// CoreDNS does: a connection idle for longer than the expire time, or (with
// a max age) older than that, is closed instead of reused. UDP is not
// pooled: each UDP query gets a fresh socket, so a random source port.
type pool struct {
	mu   sync.Mutex
	idle [2][]*pconn // by kind: plain TCP, TLS; oldest first
}

// pconn is a pooled connection.
type pconn struct {
	net.Conn
	created, used time.Time
}

// poolLimits are the Forwarder's reuse settings.
type poolLimits struct {
	expire  time.Duration // idle lifetime; 0 disables reuse
	maxAge  time.Duration // total lifetime; 0 means none
	maxIdle int           // idle connections kept per kind; 0 means no limit
}

func (l poolLimits) stale(c *pconn, now time.Time) bool {
	return now.Sub(c.used) >= l.expire || l.maxAge > 0 && now.Sub(c.created) >= l.maxAge
}

// get returns the oldest usable idle connection of the kind, or nil.
func (p *pool) get(kind int, l poolLimits) *pconn {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle[kind]) > 0 {
		c := p.idle[kind][0]
		p.idle[kind][0] = nil
		p.idle[kind] = p.idle[kind][1:]
		if !l.stale(c, now) {
			return c
		}
		c.Close()
	}
	return nil
}

// put gives back a connection that carried a complete exchange.
func (p *pool) put(kind int, c *pconn, l poolLimits) {
	now := time.Now()
	c.used = now
	if l.stale(c, now) {
		c.Close()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.maxIdle > 0 && len(p.idle[kind]) >= l.maxIdle {
		c.Close()
		return
	}
	p.idle[kind] = append(p.idle[kind], c)
}

// sweep closes the idle connections that are stale, or all of them.
func (p *pool) sweep(l poolLimits, all bool) {
	now := time.Now()
	var closing []*pconn
	p.mu.Lock()
	for kind, list := range p.idle {
		keep := list[:0]
		for _, c := range list {
			if all || l.stale(c, now) {
				closing = append(closing, c)
			} else {
				keep = append(keep, c)
			}
		}
		clear(list[len(keep):])
		p.idle[kind] = keep
	}
	p.mu.Unlock()
	for _, c := range closing {
		c.Close()
	}
}

// idleCount returns the number of idle connections, for tests.
func (p *pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle[0]) + len(p.idle[1])
}
