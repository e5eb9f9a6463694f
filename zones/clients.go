package zones

import (
	"net/netip"
	"sync"
)

// clientIndex maps a Pod IP to the Pods that hold it: for autopath, which
// namespace's search path a query from that address was made with, and for
// pods verified, whether <ip>.<ns>.pod.<zone> names a Pod.
//
// Almost every address has one Pod: one holds those, one slot each (a
// 16-byte key and a pointer to the zone's own Pod object), which keeps the
// index at 150,000 Pods to a few megabytes. An address claimed twice (a Pod
// and a hostNetwork Pod on the node's address, a reused IP whose old Pod
// the watch has not yet removed) moves to more while it is, and is never
// completed.
//
// Writers are the zone's updates (under Zone.mu); readers take the read
// lock for one or two map reads.
type clientIndex struct {
	mu   sync.RWMutex
	one  map[ipKey]*Pod
	more map[ipKey][]*Pod
}

// ipKey is an address in 16 bytes, IPv4 as IPv4-mapped IPv6: smaller than
// netip.Addr (24 bytes), and the same key for both forms of an IPv4 one.
type ipKey [16]byte

func keyOf(ip netip.Addr) ipKey { return ip.As16() }

// swap replaces old's addresses (nil: none) with new's (nil: none).
func (c *clientIndex) swap(old, new *Pod) {
	if old == new {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old != nil {
		for _, ip := range old.IPs {
			c.drop(keyOf(ip), old)
		}
	}
	if new != nil {
		if c.one == nil {
			c.one = make(map[ipKey]*Pod)
			c.more = make(map[ipKey][]*Pod)
		}
		for _, ip := range new.IPs {
			c.add(keyOf(ip), new)
		}
	}
}

func (c *clientIndex) add(k ipKey, p *Pod) {
	if held, ok := c.more[k]; ok {
		for _, h := range held {
			if h == p {
				return // an address listed twice in one Pod
			}
		}
		c.more[k] = append(held[:len(held):len(held)], p)
		return
	}
	switch q := c.one[k]; q {
	case nil:
		c.one[k] = p
	case p:
	default:
		delete(c.one, k)
		c.more[k] = []*Pod{q, p}
	}
}

func (c *clientIndex) drop(k ipKey, p *Pod) {
	held, ok := c.more[k]
	if !ok {
		if c.one[k] == p {
			delete(c.one, k)
		}
		return
	}
	out := make([]*Pod, 0, len(held))
	for _, h := range held {
		if h != p {
			out = append(out, h)
		}
	}
	switch len(out) {
	case 0:
		delete(c.more, k)
	case 1:
		delete(c.more, k)
		c.one[k] = out[0]
	default:
		c.more[k] = out
	}
}

// lookup returns the namespace of the one Pod at ip when a search path can
// be completed for it: exactly one Pod holds the address, and it is Running
// on its own network (not hostNetwork). Terminating and finished Pods are
// never in the index (FromPod leaves them out), so they get no completion.
func (c *clientIndex) lookup(ip netip.Addr) (string, bool) {
	c.mu.RLock()
	p := c.one[keyOf(ip)]
	c.mu.RUnlock()
	if p == nil || p.HostNetwork || !p.Running {
		return "", false
	}
	return p.Namespace, true
}

// holds reports whether a Pod of namespace ns holds ip, whatever its
// phase or network: what pods verified asks of <ip>.<ns>.pod.<zone>.
func (c *clientIndex) holds(ip netip.Addr, ns string) bool {
	k := keyOf(ip)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if p := c.one[k]; p != nil {
		return p.Namespace == ns
	}
	for _, p := range c.more[k] {
		if p.Namespace == ns {
			return true
		}
	}
	return false
}

// ClientNamespace returns the namespace of the Pod whose address addr is,
// when a query from addr may have its search path completed for that
// namespace (autopath): the zone is synced, and exactly one known Pod holds
// addr, Running, not terminating and not on the host's network. Otherwise
// ok is false and the query must be answered as asked. Pods are only known
// with pods verified (the only mode that watches them).
func (z *Zone) ClientNamespace(addr netip.Addr) (ns string, ok bool) {
	if !z.synced.Load() {
		return "", false
	}
	return z.clients.lookup(addr.Unmap())
}
