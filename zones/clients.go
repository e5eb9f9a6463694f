package zones

import (
	"net/netip"
	"sync"
)

// clientIndex maps a Pod IP to the Pods that hold it, for autopath: which
// namespace's search path a query from that address was made with. Most
// addresses have one Pod; the slice holds more while an address is
// claimed twice (a Pod and a hostNetwork Pod on the node's address, a
// reused IP whose old Pod the watch has not yet removed), and such an
// address is not completed at all.
//
// Writers are the zone's updates (under Zone.mu); readers take the read
// lock for one map read. The Pods are the zone's own slim objects, so an
// entry costs the map slot and a one-pointer slice.
type clientIndex struct {
	mu   sync.RWMutex
	byIP map[netip.Addr][]*Pod
}

// swap replaces old's addresses (nil: none) with new's (nil: none).
func (c *clientIndex) swap(old, new *Pod) {
	if old == new {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old != nil {
		for _, ip := range old.IPs {
			c.drop(ip, old)
		}
	}
	if new != nil {
		if c.byIP == nil {
			c.byIP = make(map[netip.Addr][]*Pod)
		}
		for _, ip := range new.IPs {
			c.add(ip, new)
		}
	}
}

func (c *clientIndex) add(ip netip.Addr, p *Pod) {
	held := c.byIP[ip]
	for _, h := range held {
		if h == p {
			return // an address listed twice in one Pod
		}
	}
	c.byIP[ip] = append(held[:len(held):len(held)], p)
}

func (c *clientIndex) drop(ip netip.Addr, p *Pod) {
	held := c.byIP[ip]
	out := make([]*Pod, 0, len(held))
	for _, h := range held {
		if h != p {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		delete(c.byIP, ip)
		return
	}
	c.byIP[ip] = out
}

// lookup returns the namespace of the one Pod at ip when a search path can
// be completed for it: exactly one Pod holds the address, and it is Running
// on its own network (not hostNetwork). Terminating and finished Pods are
// never in the index (FromPod leaves them out), so they get no completion.
func (c *clientIndex) lookup(ip netip.Addr) (string, bool) {
	c.mu.RLock()
	held := c.byIP[ip]
	var p *Pod
	if len(held) == 1 {
		p = held[0]
	}
	c.mu.RUnlock()
	if p == nil || p.HostNetwork || !p.Running {
		return "", false
	}
	return p.Namespace, true
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
