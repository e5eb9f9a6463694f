package zones

import (
	"net/netip"
	"slices"
)

// A large cluster has a million endpoints, nearly all of them one IPv4
// address, ready, without a hostname. An Endpoint value with its address
// slice is 72 bytes; the packed forms below keep such an endpoint in 4
// bytes and a bit, and pay for names, several addresses or IPv6 only where
// a slice has them.

// addrList is a list of addresses, packed in a string: 4 bytes each while
// every one is IPv4, else 16 each, IPv4 ones IPv4-mapped, and then one
// byte more, which tells the two apart (an IPv6 list's length is 1 more
// than a multiple of 4). Sources unmap every address they read, so no
// kept address is IPv4-mapped IPv6 and at reads back what was packed. A
// netip.Addr would take 24 bytes; a string, not a slice and a flag, keeps
// a slice and a view in a smaller size class.
type addrList struct{ s string }

func (l addrList) v6() bool { return len(l.s)%4 == 1 }

func (l addrList) len() int {
	if l.v6() {
		return len(l.s) / 16
	}
	return len(l.s) / 4
}

func (l addrList) at(i int) netip.Addr {
	if l.v6() {
		var b [16]byte
		copy(b[:], l.s[16*i:])
		return netip.AddrFrom16(b).Unmap()
	}
	var b [4]byte
	copy(b[:], l.s[4*i:])
	return netip.AddrFrom4(b)
}

func (l addrList) equal(o addrList) bool { return l.s == o.s }

// addrBuilder packs an addrList.
type addrBuilder struct {
	b  []byte
	v6 bool // 16 bytes an address
}

func (l *addrBuilder) width() int {
	if l.v6 {
		return 16
	}
	return 4
}

func (l *addrBuilder) len() int { return len(l.b) / l.width() }

// add appends a, unmapped and without a zone, widening the list when a is
// the first IPv6 address.
func (l *addrBuilder) add(a netip.Addr) {
	a = a.Unmap().WithZone("")
	if a.Is6() && !l.v6 {
		wide := make([]byte, 0, 16*(l.len()+1))
		for i := 0; i < len(l.b); i += 4 {
			b := netip.AddrFrom4([4]byte(l.b[i:])).As16()
			wide = append(wide, b[:]...)
		}
		l.b, l.v6 = wide, true
	}
	if l.v6 {
		b := a.As16()
		l.b = append(l.b, b[:]...)
		return
	}
	b := a.As4()
	l.b = append(l.b, b[:]...)
}

// list returns the packed list.
func (l *addrBuilder) list() addrList {
	if l.v6 && len(l.b) > 0 {
		return addrList{string(append(l.b, 0))}
	}
	return addrList{string(l.b)}
}

// bits is a set of small integers; nil is empty.
type bits []uint64

func (s bits) has(i int) bool { return i/64 < len(s) && s[i/64]&(1<<(i%64)) != 0 }

func (s *bits) set(i int) {
	for i/64 >= len(*s) {
		*s = append(*s, 0)
	}
	(*s)[i/64] |= 1 << (i % 64)
}

// endpoints is the endpoints of an EndpointSlice, packed. more is nil
// while every endpoint has the common form: one address, no name, ready;
// its fields are each nil while every endpoint has the common value.
type endpoints struct {
	addrs addrList // every endpoint's addresses, endpoint after endpoint
	more  *moreEndpoints
}

// moreEndpoints is what endpoints of an uncommon form need.
type moreEndpoints struct {
	// ends[i] is the index in addrs past endpoint i's last address; nil
	// when each endpoint has exactly one.
	ends     []uint32
	names    []string // Endpoint.Name per endpoint
	podNames bits     // Endpoint.PodName
	notReady bits
}

func (e *endpoints) len() int {
	if e.more == nil || e.more.ends == nil {
		return e.addrs.len()
	}
	return len(e.more.ends)
}

// span is the indexes in addrs of endpoint i's addresses.
func (e *endpoints) span(i int) (lo, hi int) {
	if e.more == nil || e.more.ends == nil {
		return i, i + 1
	}
	if i > 0 {
		lo = int(e.more.ends[i-1])
	}
	return lo, int(e.more.ends[i])
}

// name is Endpoint.Name and Endpoint.PodName of endpoint i.
func (e *endpoints) name(i int) (string, bool) {
	if e.more == nil || e.more.names == nil {
		return "", false
	}
	return e.more.names[i], e.more.podNames.has(i)
}

func (e *endpoints) ready(i int) bool { return e.more == nil || !e.more.notReady.has(i) }

// endpointsBuilder packs endpoints as they are read: the addresses of one,
// then its end.
type endpointsBuilder struct {
	addrs addrBuilder
	more  moreEndpoints
	n     int // endpoints ended
	next  int // addresses before the current endpoint's
}

func (b *endpointsBuilder) addr(a netip.Addr) { b.addrs.add(a) }

func (b *endpointsBuilder) end(name string, podName, ready bool) {
	m := &b.more
	i := b.n
	b.n++
	if hi := b.addrs.len(); m.ends != nil || hi != b.next+1 {
		if m.ends == nil {
			// The first endpoint without exactly one address: the ones
			// before had one each.
			m.ends = make([]uint32, i, b.n)
			for j := range m.ends {
				m.ends[j] = uint32(j + 1)
			}
		}
		m.ends = append(m.ends, uint32(hi))
	}
	b.next = b.addrs.len()
	if name != "" && m.names == nil {
		m.names = make([]string, i, b.n)
	}
	if m.names != nil {
		m.names = append(m.names, name)
	}
	if podName && name != "" {
		m.podNames.set(i)
	}
	if !ready {
		m.notReady.set(i)
	}
}

// done returns the packed endpoints, with no spare capacity.
func (b *endpointsBuilder) done() endpoints {
	e := endpoints{addrs: b.addrs.list()}
	m := b.more
	if m.ends == nil && m.names == nil && m.podNames == nil && m.notReady == nil {
		return e
	}
	e.more = &moreEndpoints{ends: exact(m.ends), names: exact(m.names), podNames: exact(m.podNames), notReady: exact(m.notReady)}
	return e
}

// dropEmpty returns nil when every name is empty.
func dropEmpty(names []string) []string {
	for _, n := range names {
		if n != "" {
			return names
		}
	}
	return nil
}

func exact[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	if cap(s) != len(s) {
		return slices.Clone(s)
	}
	return s
}

// WithEndpoints makes eps the endpoints of e, packed, and returns e.
// Addresses are kept unmapped and without a zone, as sources read them.
// Call it before e is handed to a Zone: objects do not change once it
// holds them.
func (e *EndpointSlice) WithEndpoints(eps ...Endpoint) *EndpointSlice {
	var b endpointsBuilder
	for _, ep := range eps {
		for _, a := range ep.Addresses {
			b.addr(a)
		}
		b.end(ep.Name, ep.PodName, ep.Ready)
	}
	e.eps = b.done()
	return e
}

// Endpoints returns the endpoints of e, unpacked: a copy, for tools and
// tests; the zone reads the packed form.
func (e *EndpointSlice) Endpoints() []Endpoint {
	n := e.eps.len()
	if n == 0 {
		return nil
	}
	out := make([]Endpoint, n)
	for i := range out {
		lo, hi := e.eps.span(i)
		for j := lo; j < hi; j++ {
			out[i].Addresses = append(out[i].Addresses, e.eps.addrs.at(j))
		}
		out[i].Name, out[i].PodName = e.eps.name(i)
		out[i].Ready = e.eps.ready(i)
	}
	return out
}

// Len returns the number of endpoints of e.
func (e *EndpointSlice) Len() int { return e.eps.len() }

// dropPodNames forgets the Pod names of the endpoints (hostnames stay):
// only endpoint_pod_names uses them. e must be fresh, held by no one yet.
func (e *EndpointSlice) dropPodNames() {
	m := e.eps.more
	if m == nil || m.podNames == nil {
		return
	}
	for i := range m.names {
		if m.podNames.has(i) {
			m.names[i] = ""
		}
	}
	m.podNames = nil
	m.names = dropEmpty(m.names)
	if m.ends == nil && m.names == nil && m.notReady == nil {
		e.eps.more = nil
	}
}
