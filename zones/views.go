package zones

import (
	"cmp"
	"hash/maphash"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// A Service's names are not kept as records: a cluster has tens of
// thousands of them, and holding a Node, its sets and its dns.RR values for
// each costs more memory than the objects they come from. A Service keeps
// a view (the object and its published endpoints); the records at one of
// its names are made from the view when that name is asked for, by the
// same code that built the whole set before. The fast path keeps the
// answers it gives in wire form, and a view's identity tells it when they
// are stale.

// svcView is what one Service publishes. It is immutable once published: a
// change to the Service or its endpoints publishes a new view, and an
// equal rebuild keeps the old one, so the pointer identifies the records.
type svcView struct {
	svc *Service
	published
	// names counts the names under the Service in every forward zone.
	names int32
	// hidden: ignore empty_service, and a ClusterIP Service without a
	// published endpoint. Its names do not exist; the view stays for
	// k8s_external and the PTR of its cluster IP, as in CoreDNS.
	hidden bool
}

// bigService is the number of published endpoints from which the names
// made from a view are kept (bigNodes).
const bigService = 64

func (v *svcView) same(o *svcView) bool {
	return o != nil && v.names == o.names && v.hidden == o.hidden && v.published.equal(&o.published) &&
		reflect.DeepEqual(v.svc, o.svc)
}

// ptrEntry is the PTR set of one address: what every Service gives it, in
// the order answers list them. It is immutable; a change publishes a new
// one. Targets are kept as (owner, label) and spelt out when asked for.
// There is one per published address, a million in a large cluster, and
// nearly all have one target, the Service's name or the address dashed
// under it: an entry for either is shared by every address of the Service
// that has it (the label spells no address), so such an address costs its
// map slot only. Others are one 32-byte allocation each, the first
// target inline.
type ptrEntry struct {
	one  ptrTarget
	more *[]ptrTarget // the targets after one; nil for most
}

// ptrTarget is one PTR record: label (empty for the Service's own name,
// dashedLabel for the address dashed) under the Service that owner names.
type ptrTarget struct {
	// owner is the entry of the Service; owners answer in the order of
	// "<ns>/<name>". A pointer to what the zone holds anyway, not a name
	// of its own, keeps an entry at 32 bytes and costs a Service nothing.
	owner *svcEntry
	label string
}

// dashedLabel is the label of a PTR target that is the address dashed,
// spelt when asked for. No label is ".": labels hold no dot.
const dashedLabel = "."

// same compares targets by value: a Service published again has a new
// owner pointer and the same targets.
func (t ptrTarget) same(o ptrTarget) bool { return t.owner.key == o.owner.key && t.label == o.label }

// byOwner orders targets by owner as the names "<ns>/<name>" sort,
// without spelling them: a namespace holds no '/'.
func byOwner(x, y ptrTarget) int {
	a, b := x.owner.key, y.owner.key
	if a.ns == b.ns {
		return strings.Compare(a.name, b.name)
	}
	n := min(len(a.ns), len(b.ns))
	if c := strings.Compare(a.ns[:n], b.ns[:n]); c != 0 {
		return c
	}
	// One namespace begins the other: its '/' meets the other's next byte.
	if len(a.ns) < len(b.ns) {
		return cmp.Compare('/', b.ns[n])
	}
	return cmp.Compare(a.ns[n], '/')
}

func newPTREntry(targets []ptrTarget) *ptrEntry {
	p := &ptrEntry{one: targets[0]}
	if len(targets) > 1 {
		more := slices.Clone(targets[1:])
		p.more = &more
	}
	return p
}

// len is the number of targets, and at(i) the i-th.
func (p *ptrEntry) len() int {
	if p.more == nil {
		return 1
	}
	return 1 + len(*p.more)
}

func (p *ptrEntry) at(i int) ptrTarget {
	if i == 0 {
		return p.one
	}
	return (*p.more)[i-1]
}

// target spells the PTR target of t, for address a, in zone primary.
func (t ptrTarget) target(a netip.Addr, primary string) string {
	base := t.owner.key.name + "." + join(t.owner.key.ns+".svc", primary)
	switch t.label {
	case "":
		return base
	case dashedLabel:
		return dashed(a) + "." + base
	}
	return t.label + "." + base
}

// svcEntry is what the zone holds under a Service's key: the Service and
// its EndpointSlices, which only the writer reads (under Zone.mu), and
// the view lookups read. One map for both, not one each: a key is 32
// bytes, and a large cluster has 100,000 Services. An entry stays while
// the Service, one of its slices or its view does.
type svcEntry struct {
	key    nsName
	svc    *Service // nil before it arrives or after it went
	slices sliceSet
	view   atomic.Pointer[svcView]
	// big keeps the names made from the view of a Service with many
	// endpoints. Here, not in the view: most Services have few
	// endpoints, and a view is 64 bytes without it, not 80.
	big atomic.Pointer[bigNodes]
}

// bigNodes keeps, per forward zone, the names made from view, a view of a
// Service with many endpoints: making the whole set for each lookup would
// let queries for its names cost O(endpoints) each.
type bigNodes struct {
	view  *svcView
	zones []atomic.Pointer[map[string]*Node]
}

// gone reports whether the entry holds nothing any more.
func (e *svcEntry) gone() bool { return e.svc == nil && len(e.slices) == 0 && e.view.Load() == nil }

// viewIndex maps Services to their entries (and views) and addresses to
// their PTR sets, sharded like index so that readers seldom meet a
// writer.
type viewIndex struct {
	seed  maphash.Seed
	views [shards]struct {
		mu sync.RWMutex
		m  map[nsName]*svcEntry
		_  [40]byte
	}
	// ptrs maps addresses to their PTR sets: IPv4 ones in a table of
	// their own (ptrTable4: 12 bytes an address, where a map took 41),
	// IPv6 ones, fewer, in a map.
	ptrs [shards]struct {
		mu sync.RWMutex
		m4 ptrTable4
		m6 map[netip.Addr]*ptrEntry
		_  [56]byte
	}
	ptrNames atomic.Int64
	svcNames atomic.Int64
	services atomic.Int64 // Services with a view

	// ext maps each external address (ExternalIPs) to the Services that
	// have it, for k8s_external's PTR answers. Few Services have any.
	extMu sync.RWMutex
	ext   map[netip.Addr][]nsName
}

func newViewIndex() *viewIndex {
	vi := &viewIndex{seed: maphash.MakeSeed(), ext: make(map[netip.Addr][]nsName)}
	seed4 := maphash.Comparable(vi.seed, 4)
	for i := range vi.views {
		vi.views[i].m = make(map[nsName]*svcEntry)
		vi.ptrs[i].m4.seed = seed4
		vi.ptrs[i].m6 = make(map[netip.Addr]*ptrEntry)
	}
	return vi
}

func (vi *viewIndex) view(k nsName) *svcView {
	if e := vi.entry(k); e != nil {
		return e.view.Load()
	}
	return nil
}

// entry returns the entry of k, or nil.
func (vi *viewIndex) entry(k nsName) *svcEntry {
	s := &vi.views[maphash.Comparable(vi.seed, k)%shards]
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	return e
}

// ensure returns the entry of k, made when there is none. Zone.mu is
// held.
func (vi *viewIndex) ensure(k nsName) *svcEntry {
	if e := vi.entry(k); e != nil {
		return e
	}
	e := &svcEntry{key: k}
	s := &vi.views[maphash.Comparable(vi.seed, k)%shards]
	s.mu.Lock()
	s.m[k] = e
	s.mu.Unlock()
	return e
}

// prune drops e once it holds nothing. Zone.mu is held.
func (vi *viewIndex) prune(e *svcEntry) {
	if !e.gone() {
		return
	}
	s := &vi.views[maphash.Comparable(vi.seed, e.key)%shards]
	s.mu.Lock()
	if s.m[e.key] == e {
		delete(s.m, e.key)
	}
	s.mu.Unlock()
}

// entries calls f with every entry. Zone.mu is held: no one else
// changes the maps meanwhile.
func (vi *viewIndex) entries(f func(*svcEntry)) {
	for i := range vi.views {
		for _, e := range vi.views[i].m {
			f(e)
		}
	}
}

func (vi *viewIndex) setView(e *svcEntry, v *svcView) {
	e.big.Store(nil) // made from the view replaced
	if old := e.view.Swap(v); old != nil {
		vi.svcNames.Add(-int64(old.names))
		vi.services.Add(-1)
	}
	if v != nil {
		vi.svcNames.Add(int64(v.names))
		vi.services.Add(1)
	}
}

// ptrHash is the hash of a that picks its shard, and in the shard's
// ptrTable4 its bucket.
func (vi *viewIndex) ptrHash(a netip.Addr) uint64 {
	if a.Is4() {
		return vi.ptrs[0].m4.hash(be32(a.As4()))
	}
	return maphash.Comparable(vi.seed, a)
}

// ptr returns the PTR set of a, an unmapped address, or nil.
func (vi *viewIndex) ptr(a netip.Addr) *ptrEntry {
	h := vi.ptrHash(a)
	s := &vi.ptrs[h%shards]
	s.mu.RLock()
	var p *ptrEntry
	if a.Is4() {
		p = s.m4.get(a.As4(), h)
	} else {
		p = s.m6[a]
	}
	s.mu.RUnlock()
	return p
}

func (vi *viewIndex) setPTR(a netip.Addr, p *ptrEntry) {
	h := vi.ptrHash(a)
	s := &vi.ptrs[h%shards]
	s.mu.Lock()
	var had bool
	if a.Is4() {
		had = s.m4.set(a.As4(), h, p)
	} else {
		_, had = s.m6[a]
		if p == nil {
			delete(s.m6, a)
		} else {
			s.m6[a] = p
		}
	}
	switch {
	case p == nil && had:
		vi.ptrNames.Add(-1)
	case p != nil && !had:
		vi.ptrNames.Add(1)
	}
	s.mu.Unlock()
}

// publishService makes the view of the Service of e current (svc nil:
// gone, or held back) and its addresses' PTR sets with it, and drops e
// once it holds nothing. It reports whether anything a lookup sees
// changed.
func (z *Zone) publishService(e *svcEntry, svc *Service) bool {
	defer z.vi.prune(e)
	k := e.key
	old := e.view.Load()
	var v *svcView
	var ptrs map[netip.Addr][]string // PTR labels, as ptrTarget has them
	if svc != nil {
		v, ptrs = z.newView(svc, e.slices)
	}
	changed := false
	if v == nil || !v.same(old) {
		z.vi.setView(e, v)
		changed = true
		var was, is []netip.Addr
		if old != nil {
			was = old.svc.ExternalIPs()
		}
		if v != nil {
			is = v.svc.ExternalIPs()
		}
		z.vi.setExternal(k, was, is)
	}
	// PTRs: every address the Service had or has.
	shared := sharedPTRs{owner: e}
	addrs := make(map[netip.Addr]bool, len(ptrs))
	for a := range ptrs {
		addrs[a] = true
	}
	if old != nil {
		// Keys are the addresses the reverse names spell: unmapped.
		for _, a := range old.svc.ClusterIPs {
			addrs[a.Unmap()] = true
		}
		for i := range old.len() {
			addrs[old.addr(i)] = true
		}
	}
	for a := range addrs {
		if z.setPTRTargets(a, e, ptrs[a], &shared) {
			changed = true
		}
	}
	z.countNamespace(k.ns, old != nil, v != nil)
	return changed
}

// repointView makes the view of k hold svc, an object equal to the one it
// holds: the zone keeps the newer copy, and a view still holding the older
// would keep both alive. The records are the same, but the view is a new
// one: a view never changes once published.
func (z *Zone) repointView(e *svcEntry, svc *Service) {
	v := e.view.Load()
	if v == nil || v.svc == svc {
		return
	}
	z.vi.setView(e, &svcView{svc: svc, published: v.published, names: v.names, hidden: v.hidden})
}

// newView builds the view of svc, and the PTR targets (labels) of its
// addresses: the Service's own addresses under its name, each published
// endpoint under its label, in the served reverse zones only.
func (z *Zone) newView(svc *Service, bySlice sliceSet) (*svcView, map[netip.Addr][]string) {
	v := &svcView{svc: svc, published: z.publishedEndpoints(svc, bySlice)}
	v.hidden = z.opts.IgnoreEmptyService && svc.Type == ClusterIP && v.len() == 0
	if n, ok := serviceNames(svc, &v.published); ok {
		v.names = int32(n * len(z.fwd))
	} else {
		v.names = int32(z.builtServiceNames(svc, &v.published))
	}
	if svc.Type == ExternalName || len(z.fwd) == 0 {
		return v, nil
	}
	ptrs := make(map[netip.Addr][]string)
	add := func(a netip.Addr, label string) {
		name, err := dns.ReverseAddr(a.String())
		if err != nil || z.Match(name) == "" {
			return
		}
		if a, ok := parseReverse(name); ok {
			ptrs[a] = append(ptrs[a], label)
		}
	}
	for _, ip := range svc.ClusterIPs {
		add(ip, "")
	}
	for i := range v.len() {
		label, ok := v.named(i)
		if !ok {
			label = dashedLabel
		}
		add(v.addr(i), label)
	}
	return v, ptrs
}

// builtServiceNames counts the names under the Service by making its
// records: what serviceNames must agree with.
func (z *Zone) builtServiceNames(svc *Service, pub *published) int {
	n := 0
	for name := range z.buildService(svc, pub) {
		if z.underService(name) {
			n++
		}
	}
	return n
}

// serviceNames counts the names buildService makes under a Service in one
// forward zone, without making them: at a first sync, making every
// Service's records only to count its names was half of the build's
// garbage. ok is false for shapes the count does not follow (a label or
// port name with a dot, which makes names between it and the Service's; a
// label beginning with "_", which could be an SRV name): then the records
// are made and counted.
func serviceNames(svc *Service, pub *published) (n int, ok bool) {
	var ports []Port
	switch svc.Type {
	case ExternalName:
		return 1, true
	case ClusterIP:
		if len(svc.ClusterIPs) > 0 || len(svc.Ports) > 0 {
			n++ // the Service's name: its addresses, its SRV set
		}
		ports = svc.Ports
	case Headless:
		if pub.len() == 0 {
			return 0, true
		}
		n++
		ports = pub.ports // the ports of its SRV pairs
	}
	// _<port>._<proto>.<svc> for each named port, and _<proto>.<svc>
	// between them and the Service's name.
	for i, p := range ports {
		if p.Name == "" {
			continue
		}
		if strings.Contains(p.Name, ".") || strings.Contains(p.Protocol, ".") {
			return 0, false
		}
		newName, newProto := true, true
		for _, q := range ports[:i] {
			if q.Name != "" && q.Protocol == p.Protocol {
				newProto = false
				newName = newName && q.Name != p.Name
			}
		}
		if newName {
			n++
		}
		if newProto {
			n++
		}
	}
	// <label>.<svc> for each label; equal labels are next to each other.
	for i := range pub.len() {
		if l, named := pub.named(i); named && (strings.Contains(l, ".") || strings.HasPrefix(l, "_")) {
			return 0, false
		}
		if i == 0 || !pub.sameLabel(i, i-1) {
			n++
		}
	}
	return n, true
}

// sharedPTRs are the entries of one target under the Service being
// published (owner): its name, and the address dashed; each made when
// first needed.
type sharedPTRs struct {
	owner        *svcEntry
	self, dashed *ptrEntry
}

// entry returns the shared entry of label, "" or dashedLabel.
func (s *sharedPTRs) entry(label string) *ptrEntry {
	p := &s.self
	if label == dashedLabel {
		p = &s.dashed
	}
	if *p == nil {
		*p = &ptrEntry{one: ptrTarget{s.owner, label}}
	}
	return *p
}

// setPTRTargets makes labels what owner gives the PTR set of a. It reports
// whether the set changed.
func (z *Zone) setPTRTargets(a netip.Addr, owner *svcEntry, labels []string, shared *sharedPTRs) bool {
	old := z.vi.ptr(a)
	var was, next []ptrTarget
	if old != nil {
		for i := range old.len() {
			t := old.at(i)
			was = append(was, t)
			if t.owner.key != owner.key {
				next = append(next, t)
			}
		}
	}
	for _, l := range labels {
		if t := (ptrTarget{owner, l}); !slices.ContainsFunc(next, t.same) {
			next = append(next, t)
		}
	}
	// Owners in order, each keeping its own order, as merged sets were.
	slices.SortStableFunc(next, byOwner)
	if old != nil && slices.EqualFunc(was, next, ptrTarget.same) {
		return false
	}
	if len(next) == 0 {
		z.vi.setPTR(a, nil)
		return old != nil
	}
	switch {
	case len(next) > 1 || next[0].owner != owner:
		z.vi.setPTR(a, newPTREntry(next))
	case next[0].label == "" || next[0].label == dashedLabel:
		z.vi.setPTR(a, shared.entry(next[0].label))
	default:
		z.vi.setPTR(a, newPTREntry(next))
	}
	return true
}

// countNamespace keeps <ns>.svc.<zone> in existence while a Service in ns
// has a view: one holder for all of them, not one each.
func (z *Zone) countNamespace(ns string, had, has bool) {
	switch {
	case has && !had:
		z.nsServices[ns]++
		if z.nsServices[ns] == 1 {
			b := builder{}
			for _, zone := range z.fwd {
				b.ent(join(ns+".svc", zone))
			}
			z.setOwner("svcns/"+ns, b)
		}
	case had && !has:
		z.nsServices[ns]--
		if z.nsServices[ns] <= 0 {
			delete(z.nsServices, ns)
			z.setOwner("svcns/"+ns, nil)
		}
	}
}

// serviceName splits a name under a Service: the view of the Service, and
// which forward zone and Service name (base) it is under. ok is false for
// a name that is not in a Service's subtree.
func (z *Zone) serviceName(name string) (v *svcView, zi int, base string, ok bool) {
	for i, suffix := range z.svcSuffix {
		rest, found := strings.CutSuffix(name, suffix)
		if !found || rest == "" {
			continue
		}
		dot := strings.LastIndexByte(rest, '.')
		if dot < 0 {
			return nil, 0, "", false // <ns>.svc.<zone>
		}
		ns, above := rest[dot+1:], rest[:dot]
		start := strings.LastIndexByte(above, '.') + 1
		v = z.vi.view(nsName{ns, above[start:]})
		if v == nil || v.hidden {
			return nil, 0, "", false
		}
		return v, i, name[start:], true
	}
	return nil, 0, "", false
}

// underService reports whether name is a Service's name or below one.
func (z *Zone) underService(name string) bool {
	for _, suffix := range z.svcSuffix {
		if rest, found := strings.CutSuffix(name, suffix); found && strings.Contains(rest, ".") {
			return true
		}
	}
	return false
}

// serviceNode makes the Node at name, under the Service of v named base in
// forward zone zi; nil when the Service has nothing there.
func (z *Zone) serviceNode(v *svcView, zi int, base, name string) *Node {
	if b := z.bigNodes(v); b != nil {
		if m := b.zones[zi].Load(); m != nil {
			return (*m)[name]
		}
		m := make(map[string]*Node)
		for n, c := range z.serviceRecords(v, base) {
			m[n] = &Node{Name: n, Sets: group(c.rrs, c.extra)}
		}
		b.zones[zi].Store(&m)
		return m[name]
	}
	c := z.serviceRecords(v, base)[name]
	if c == nil {
		return nil
	}
	return &Node{Name: name, Sets: group(c.rrs, c.extra)}
}

// bigNodes returns where the names made from v are kept, when v has many
// endpoints and is still its Service's view; nil otherwise.
func (z *Zone) bigNodes(v *svcView) *bigNodes {
	if v.len() < bigService {
		return nil
	}
	e := z.vi.entry(nsName{v.svc.Namespace, v.svc.Name})
	if e == nil {
		return nil
	}
	b := e.big.Load()
	if b != nil && b.view == v {
		return b
	}
	nb := &bigNodes{view: v, zones: make([]atomic.Pointer[map[string]*Node], len(z.fwd))}
	// Only for the current view: a lookup that got v just before it was
	// replaced must not keep it alive there.
	if e.view.Load() != v || !e.big.CompareAndSwap(b, nb) {
		return nil
	}
	return nb
}

func (z *Zone) serviceRecords(v *svcView, base string) builder {
	b := builder{}
	// base is a substring of the name asked; the records keep their own
	// copy, not a reference into a query's buffer.
	z.buildServiceIn(b, v.svc, &v.published, strings.Clone(base))
	return b
}

// ptrEntryOf returns the PTR set of a reverse name and the address it
// spells, or nil.
func (z *Zone) ptrEntryOf(name string) (*ptrEntry, netip.Addr) {
	a, ok := parseReverse(name)
	if !ok {
		return nil, a
	}
	return z.vi.ptr(a), a
}

// ptrNode makes the PTR Node of a reverse name, or nil.
func (z *Zone) ptrNode(name string) *Node {
	p, a := z.ptrEntryOf(name)
	if p == nil {
		return nil
	}
	// The name asked is the one the address spells (parseReverse takes
	// only that spelling), but it may sit in a query's buffer.
	name = strings.Clone(name)
	rrs := make([]dns.RR, p.len())
	for i := range rrs {
		rrs[i] = &dns.PTR{Hdr: z.hdr(name, dns.TypePTR), Ptr: p.at(i).target(a, z.primary)}
	}
	return &Node{Name: name, Sets: []RRSet{{Type: dns.TypePTR, RRs: rrs}}}
}

// parseReverse reads the address of a full-length reverse name, lower
// case and fully qualified: d.c.b.a.in-addr.arpa. or 32 nibbles in
// ip6.arpa.
func parseReverse(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		var b [4]byte
		for i := 3; i >= 0; i-- {
			label := rest
			if i > 0 {
				dot := strings.IndexByte(rest, '.')
				if dot < 0 {
					return netip.Addr{}, false
				}
				label, rest = rest[:dot], rest[dot+1:]
			}
			if len(label) == 0 || len(label) > 3 || (len(label) > 1 && label[0] == '0') {
				return netip.Addr{}, false
			}
			n := 0
			for _, c := range []byte(label) {
				if c < '0' || c > '9' {
					return netip.Addr{}, false
				}
				n = n*10 + int(c-'0')
			}
			if n > 255 {
				return netip.Addr{}, false
			}
			b[i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		if len(rest) != 63 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i := 0; i < 32; i++ {
			c := rest[2*i]
			if i < 31 && rest[2*i+1] != '.' {
				return netip.Addr{}, false
			}
			var n byte
			switch {
			case c >= '0' && c <= '9':
				n = c - '0'
			case c >= 'a' && c <= 'f':
				n = c - 'a' + 10
			default:
				return netip.Addr{}, false
			}
			// Nibble i counts from the least significant end.
			pos := 31 - i
			if pos%2 == 0 {
				b[pos/2] |= n << 4
			} else {
				b[pos/2] |= n
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// setExternal moves Service k in the external address index from the
// addresses was to is.
func (vi *viewIndex) setExternal(k nsName, was, is []netip.Addr) {
	if slices.Equal(was, is) {
		return
	}
	vi.extMu.Lock()
	defer vi.extMu.Unlock()
	for _, a := range was {
		rest := slices.DeleteFunc(slices.Clone(vi.ext[a]), func(x nsName) bool { return x == k })
		if len(rest) == 0 {
			delete(vi.ext, a)
		} else {
			vi.ext[a] = rest
		}
	}
	for _, a := range is {
		if !slices.Contains(vi.ext[a], k) {
			// A new slice: readers may hold the old one.
			next := append(slices.Clone(vi.ext[a]), k)
			slices.SortFunc(next, func(x, y nsName) int {
				return cmp.Or(strings.Compare(x.ns, y.ns), strings.Compare(x.name, y.name))
			})
			vi.ext[a] = next
		}
	}
}
