package zones

import (
	"fmt"
	"net/netip"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/labels"
)

// SchemaVersion is the version of the Kubernetes DNS specification served
// at dns-version.<zone>.
const SchemaVersion = "1.1.0"

// PodMode is what the pods option asks for <ip>.<ns>.pod.<zone> names.
type PodMode uint8

// Pod modes, as CoreDNS's kubernetes plugin has them.
const (
	// PodsDisabled answers no pod names.
	PodsDisabled PodMode = iota
	// PodsInsecure answers any well-formed pod name in an existing
	// namespace with the address it spells, like kube-dns did.
	PodsInsecure
	// PodsVerified answers a pod name only when a Pod in that namespace has
	// that IP.
	PodsVerified
)

// ParsePodMode parses "disabled", "insecure" or "verified".
func ParsePodMode(s string) (PodMode, error) {
	switch s {
	case "disabled", "":
		return PodsDisabled, nil
	case "insecure":
		return PodsInsecure, nil
	case "verified":
		return PodsVerified, nil
	}
	return 0, fmt.Errorf("unknown pods mode %q: want disabled, insecure or verified", s)
}

func (m PodMode) String() string {
	return [...]string{"disabled", "insecure", "verified"}[m]
}

// Options configure a Zone.
type Options struct {
	// Zones are the zones served, lower case and fully qualified: cluster
	// domains ("cluster.local.") and reverse zones ("in-addr.arpa."). The
	// first forward zone names the targets of PTR records.
	Zones []string
	// TTL of every record, and the SOA minimum.
	TTL uint32
	// Pods selects how pod names are answered.
	Pods PodMode
	// Namespaces, when not empty, are the only namespaces published.
	Namespaces []string
	// EndpointPodNames names endpoints without a hostname after their Pod.
	EndpointPodNames bool
	// NSAddrs are the addresses given to ns.dns.<zone> when there is no
	// kube-system/kube-dns Service to take them from.
	NSAddrs []netip.Addr
	// NoEndpoints drops EndpointSlices (noendpoints): headless Services
	// and endpoint names then do not exist.
	NoEndpoints bool
	// IgnoreEmptyService makes the names of a ClusterIP Service without a
	// published endpoint not exist (ignore empty_service); its PTR stays,
	// as in CoreDNS.
	IgnoreEmptyService bool
	// NamespaceLabels, when set, publishes only the namespaces whose
	// Namespace object it selects (namespace_labels): their Services,
	// endpoints and Pods; the rest are held, ready for a label change.
	NamespaceLabels labels.Selector
	// Now is the clock for SOA serials and for building the first view
	// while it arrives (BuildAtSync); nil means time.Now.
	Now func() time.Time
}

type nsName struct{ ns, name string }

// sliceSet is the EndpointSlices of one Service, sorted by name. Most
// Services have one: a map for it would take some 250 bytes.
type sliceSet []*EndpointSlice

func (s sliceSet) find(name string) (int, bool) {
	return slices.BinarySearchFunc(s, name, func(e *EndpointSlice, n string) int { return strings.Compare(e.Name, n) })
}

// with puts e in the set, in place of the slice of its name if there is one.
func (s sliceSet) with(e *EndpointSlice) sliceSet {
	i, ok := s.find(e.Name)
	if ok {
		s[i] = e
		return s
	}
	return slices.Insert(s, i, e)
}

// without removes the slice named name.
func (s sliceSet) without(name string) sliceSet {
	if i, ok := s.find(name); ok {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// contrib is what one owner (a Service, a Namespace, a Pod, the apex)
// contributes at one name. A contrib without records keeps its name in
// existence as an empty non-terminal.
type contrib struct {
	rrs   []dns.RR
	extra []dns.RR
}

// Zone is the cluster zone: the objects it was given and the records built
// from them. Its methods are safe for concurrent use; Lookup never waits
// for a whole update, only for the assignment of one name.
type Zone struct {
	opts       Options
	fwd, rev   []string
	primary    string
	byLen      []string // all zones, longest first, for Match
	podSuffix  []string // ".pod.<zone>" per forward zone
	namespaces map[string]bool
	now        func() time.Time

	idx *index
	vi  *viewIndex
	// svcSuffix is ".svc.<zone>" per forward zone: what ends the names
	// under Services.
	svcSuffix []string
	synced    atomic.Bool
	// gen moves after every change, once the index holds it: answers kept
	// in wire form are valid while it stands still.
	gen atomic.Uint64

	mu sync.Mutex
	// The Services and their EndpointSlices are held in vi, with their
	// views (svcEntry). nServices counts the Services.
	nServices int
	slices    map[nsName]*EndpointSlice
	pods      map[nsName]*Pod
	clients   clientIndex
	nss       map[string]*Namespace
	owners    map[string][]string // owner → the names it holds
	// nsServices counts the Services with a view per namespace.
	nsServices map[string]int
	serial     uint32
	scratch    publishScratch
	// atSync: before MarkSynced, build what changed only every
	// buildEvery (BuildAtSync); built is when that was last done.
	atSync  bool
	built   time.Time
	dirty   map[nsName]struct{}
	changed bool
}

// New returns an empty Zone. It answers nothing until objects arrive, and
// reports itself not synced until MarkSynced.
func New(opts Options) *Zone {
	z := &Zone{
		opts:   opts,
		now:    opts.Now,
		idx:    newIndex(),
		vi:     newViewIndex(),
		slices: make(map[nsName]*EndpointSlice),
		pods:   make(map[nsName]*Pod),
		nss:    make(map[string]*Namespace),
		owners: make(map[string][]string),
		dirty:  make(map[nsName]struct{}),

		nsServices: make(map[string]int),
	}
	if z.now == nil {
		z.now = time.Now
	}
	for _, zone := range opts.Zones {
		zone = strings.ToLower(dns.Fqdn(zone))
		if isReverse(zone) {
			z.rev = append(z.rev, zone)
			continue
		}
		z.fwd = append(z.fwd, zone)
		z.podSuffix = append(z.podSuffix, "."+join("pod", zone))
		z.svcSuffix = append(z.svcSuffix, "."+join("svc", zone))
	}
	z.byLen = append(append([]string(nil), z.fwd...), z.rev...)
	slices.SortStableFunc(z.byLen, func(a, b string) int { return len(b) - len(a) })
	switch {
	case len(z.fwd) > 0:
		z.primary = z.fwd[0]
	case len(z.rev) > 0:
		z.primary = z.rev[0]
	}
	if len(opts.Namespaces) > 0 {
		z.namespaces = make(map[string]bool)
		for _, ns := range opts.Namespaces {
			z.namespaces[strings.ToLower(ns)] = true
		}
	}
	z.mu.Lock()
	z.changed = true
	z.commit()
	z.mu.Unlock()
	return z
}

// Zones returns the zones served, as configured.
func (z *Zone) Zones() []string { return z.byLen }

// TTL returns the TTL of the zone's records.
func (z *Zone) TTL() uint32 { return z.opts.TTL }

// MarkSynced records that the source has delivered its first complete view.
// Until then the names of the zone must not be answered negatively.
func (z *Zone) MarkSynced() {
	defer z.gen.Add(1)
	z.mu.Lock()
	// What arrived since the last build (BuildAtSync) is built now.
	z.atSync = false
	z.commit()
	first := !z.synced.Swap(true)
	z.mu.Unlock()
	if first && z.Names() >= freeAfterReplace {
		debug.FreeOSMemory() // the initial list's garbage, as after Replace
	}
}

// freeAfterReplace is the size (objects, or names at first sync) from which
// the garbage of a full delivery is returned to the OS at once.
const freeAfterReplace = 10_000

// Generation changes after every change to the zone. Read it before a
// lookup: an answer built from that lookup is current while Generation
// returns the same value.
func (z *Zone) Generation() uint64 { return z.gen.Load() }

// Synced reports whether MarkSynced was called.
func (z *Zone) Synced() bool { return z.synced.Load() }

// Match returns the longest zone of z that contains name (lower case, fully
// qualified), or "" when none does.
func (z *Zone) Match(name string) string {
	for _, zone := range z.byLen {
		if inZone(name, zone) {
			return zone
		}
	}
	return ""
}

// Lookup returns the Node at name (lower case, fully qualified), or nil when
// the name does not exist in the zone.
func (z *Zone) Lookup(name string) *Node {
	if n := z.idx.get(name); n != nil {
		return n
	}
	if v, zi, base, ok := z.serviceName(name); ok {
		return z.serviceNode(v, zi, base, name)
	}
	if n := z.ptrNode(name); n != nil {
		return n
	}
	return z.podNode(name)
}

// Stamp identifies what the records at name are made from, without making
// them: while Stamp returns an equal value, Lookup returns equal records
// (a changed SOA aside). It is nil for a name that does not exist. stable
// is false for names made up anew at each lookup (pod names), whose
// records have no identity to compare.
func (z *Zone) Stamp(name string) (stamp any, stable bool) {
	if n := z.idx.get(name); n != nil {
		return n, true
	}
	if v, _, _, ok := z.serviceName(name); ok {
		return v, true
	}
	if p, _ := z.ptrEntryOf(name); p != nil {
		return p, true
	}
	if z.podNode(name) != nil {
		return nil, false
	}
	return nil, true
}

// SOA returns the SOA record at the apex of zone, one of z's zones.
func (z *Zone) SOA(zone string) dns.RR {
	if n := z.idx.get(zone); n != nil {
		if set := n.Get(dns.TypeSOA); set != nil {
			return set.RRs[0]
		}
	}
	return nil
}

// Objects counts the objects the zone holds, by kind.
func (z *Zone) Objects() map[Kind]int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return map[Kind]int{KindService: z.nServices, KindEndpointSlice: len(z.slices), KindPod: len(z.pods), KindNamespace: len(z.nss)}
}

// Services returns how many Services the zone publishes, without a lock:
// what the fast path sizes its cache of replies by.
func (z *Zone) Services() int { return int(z.vi.services.Load()) }

// Names returns how many owner names the zone holds.
func (z *Zone) Names() int {
	return z.idx.len() + int(z.vi.svcNames.Load()+z.vi.ptrNames.Load())
}

// podNode answers the pod subtree, whose names are not stored: in insecure
// mode every well-formed address is a name; in verified mode the address
// of a Pod of the namespace (the client index has them), so 150,000 Pods
// cost no records.
func (z *Zone) podNode(name string) *Node {
	if z.opts.Pods == PodsDisabled {
		return nil
	}
	for i, suffix := range z.podSuffix {
		rest, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		zone := z.fwd[i]
		podLabel, ns, ok := strings.Cut(rest, ".")
		if !ok { // <ns>.pod.<zone>
			if z.namespaceExists(rest, zone) {
				return &Node{Name: name}
			}
			return nil
		}
		if strings.Contains(ns, ".") || !z.namespaceExists(ns, zone) {
			return nil
		}
		ip, ok := parsePodLabel(podLabel)
		if !ok {
			return nil
		}
		if z.opts.Pods == PodsVerified && (!verifiedLabel(podLabel, ip) || !z.clients.holds(ip, ns)) {
			return nil
		}
		rr := z.addrRR(name, ip)
		return &Node{Name: name, Sets: []RRSet{{Type: rr.Header().Rrtype, RRs: []dns.RR{rr}}}}
	}
	return nil
}

func (z *Zone) namespaceExists(ns, zone string) bool {
	return z.idx.get(join(ns+".svc", zone)) != nil
}

// verifiedLabel reports whether label spells ip as pods verified answers
// it: dashed, and for IPv6 also with the dash ending a leading or trailing
// "::" kept, as CoreDNS's verified mode answers that one.
func verifiedLabel(label string, ip netip.Addr) bool {
	return label == dashed(ip) || ip.Is6() && label == strings.ReplaceAll(ip.String(), ":", "-")
}

// parsePodLabel reads the dashed address of a pod name the way CoreDNS does:
// three dashes and no double dash spell IPv4, anything else IPv6.
func parsePodLabel(label string) (netip.Addr, bool) {
	if strings.Count(label, "-") == 3 && !strings.Contains(label, "--") {
		a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", "."))
		return a, err == nil && a.Is4()
	}
	a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":"))
	return a, err == nil && a.Is6() && a.Zone() == ""
}

// Intern returns the object the zone holds under obj's key when it equals
// obj, and obj otherwise: sources use it to keep one copy of what did not
// change.
func (z *Zone) Intern(obj Object) Object {
	z.mu.Lock()
	defer z.mu.Unlock()
	k := obj.Key()
	var held Object
	switch k.Kind {
	case KindService:
		if e := z.vi.entry(nsName{k.Namespace, k.Name}); e != nil && e.svc != nil {
			held = e.svc
		}
	case KindEndpointSlice:
		if e := z.slices[nsName{k.Namespace, k.Name}]; e != nil {
			held = e
		}
	case KindPod:
		if p := z.pods[nsName{k.Namespace, k.Name}]; p != nil {
			held = p
		}
	case KindNamespace:
		if n := z.nss[k.Name]; n != nil {
			held = n
		}
	}
	if held != nil && reflect.DeepEqual(held, obj) {
		return held
	}
	return obj
}

// Update adds or replaces one object.
// After BuildAtSync, and until MarkSynced, it builds only every buildEvery.
func (z *Zone) Update(obj Object) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.upsert(obj)
	z.commitSoon()
}

// Delete removes one object; after BuildAtSync and until MarkSynced, it
// builds only every buildEvery, as Update.
func (z *Zone) Delete(key Key) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.remove(key)
	z.commitSoon()
}

// BuildAtSync makes Update and Delete, until MarkSynced, only record what
// changed and build it every buildEvery, and then only the Services whose
// object and EndpointSlices have both arrived; MarkSynced builds the rest. A
// watch delivers a large cluster one object at a time, many EndpointSlices
// to a Service, and nothing is answered before the sync (the cluster zone
// is SERVFAIL): building a Service at each of its objects made the first
// sync spend most of its time making garbage. Sources that deliver the
// first view object by object call it before the first one.
func (z *Zone) BuildAtSync() {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.atSync = true
	z.built = z.now()
}

// buildEvery is how often the first view is built while it arrives: the
// stream leaves the CPU mostly idle, and building as it comes spreads the
// work over that wait instead of doing it all at the sync; a Service whose
// objects straddle two builds is built twice. Each informer hands in its
// whole listing at once, and with 30,000 Services the EndpointSlices came
// before the Services: building what had come built each Service twice,
// once from its slices alone (60,469 builds for 30,001 Services), hence
// the wait for both.
const buildEvery = 250 * time.Millisecond

// commitSoon commits now, or, while the first view arrives (BuildAtSync),
// once buildEvery has passed since the last build. z.mu is held.
func (z *Zone) commitSoon() {
	if z.atSync && !z.synced.Load() {
		now := z.now()
		if now.Sub(z.built) < buildEvery {
			return
		}
		z.built = now
	}
	z.commit()
}

// Replace makes objs the complete set of objects: what is not in it is
// deleted. Only the Services whose objects changed are rebuilt.
func (z *Zone) Replace(objs []Object) {
	changed := 0 // objects new, changed or gone
	defer func() {
		// A full delivery of a large cluster leaves the previous copies as
		// garbage: give that memory back now, not at the next GC cycles.
		// A delivery that changes a few objects (a manifests source hands
		// in everything each time) does not pay for it.
		if changed >= freeAfterReplace {
			debug.FreeOSMemory()
		}
	}()
	z.mu.Lock()
	defer z.mu.Unlock()
	keep := make(map[Key]bool, len(objs))
	for _, o := range objs {
		keep[o.Key()] = true
	}
	var gone []Key
	z.vi.entries(func(e *svcEntry) {
		if key := (Key{KindService, e.key.ns, e.key.name}); e.svc != nil && !keep[key] {
			gone = append(gone, key)
		}
	})
	for k := range z.slices {
		if key := (Key{KindEndpointSlice, k.ns, k.name}); !keep[key] {
			gone = append(gone, key)
		}
	}
	for k := range z.pods {
		if key := (Key{KindPod, k.ns, k.name}); !keep[key] {
			gone = append(gone, key)
		}
	}
	for name := range z.nss {
		if key := (Key{Kind: KindNamespace, Name: name}); !keep[key] {
			gone = append(gone, key)
		}
	}
	for _, k := range gone {
		z.remove(k)
	}
	changed = len(gone)
	for _, o := range objs {
		if z.upsert(o) {
			changed++
		}
	}
	z.commit()
}

func (z *Zone) allowed(ns string) bool {
	return z.namespaces == nil || z.namespaces[ns]
}

// exposed reports whether the objects of namespace ns are published: with
// namespace_labels, only while its Namespace exists and matches. z.mu is
// held.
func (z *Zone) exposed(ns string) bool {
	if z.opts.NamespaceLabels == nil {
		return true
	}
	n := z.nss[ns]
	return n != nil && z.opts.NamespaceLabels.Matches(labels.Set(n.Labels))
}

// namespaceChanged republishes what namespace ns holds after its
// Namespace object came, went or changed; was is whether it was exposed
// before. z.mu is held.
func (z *Zone) namespaceChanged(ns string, was bool) {
	now := z.exposed(ns)
	if z.nss[ns] != nil && now {
		b := builder{}
		for _, zone := range z.fwd {
			b.ent(join(ns+".svc", zone))
		}
		z.setOwner("ns/"+ns, b)
	} else {
		z.setOwner("ns/"+ns, nil)
	}
	if was == now {
		return
	}
	// Only a namespace_labels zone gets here, on a label change: rare
	// enough to walk the objects.
	z.vi.entries(func(e *svcEntry) {
		if e.key.ns == ns && e.svc != nil {
			z.dirty[e.key] = struct{}{}
		}
	})
}

// upsert stores obj and marks what it changes; commit rebuilds. It
// reports whether obj is not the very object already held.
func (z *Zone) upsert(obj Object) (fresh bool) {
	switch o := obj.(type) {
	case *Service:
		if !z.allowed(o.Namespace) {
			return true
		}
		k := nsName{o.Namespace, o.Name}
		e := z.vi.ensure(k)
		old := e.svc
		if old == o {
			return false // the very object held: a full delivery repeats most
		}
		if old == nil {
			z.nServices++
		}
		// Keep the newer copy even when equal: a relist hands in fresh
		// objects, and holding on to the old ones would keep both alive.
		e.svc = o
		if old == nil || !reflect.DeepEqual(old, o) {
			z.dirty[k] = struct{}{}
		} else {
			z.repointView(e, o)
		}
	case *EndpointSlice:
		if z.opts.NoEndpoints || !z.allowed(o.Namespace) {
			return true
		}
		k := nsName{o.Namespace, o.Name}
		old := z.slices[k]
		if old == o {
			return false
		}
		if old != nil && reflect.DeepEqual(old, o) {
			z.slices[k] = o
			z.addSlice(o)
			return true
		}
		if old != nil && old.Service != o.Service {
			z.remove(Key{KindEndpointSlice, k.ns, k.name})
		}
		z.slices[k] = o
		z.dirty[z.addSlice(o)] = struct{}{}
	case *Pod:
		if z.opts.Pods != PodsVerified || !z.allowed(o.Namespace) {
			return true
		}
		k := nsName{o.Namespace, o.Name}
		old := z.pods[k]
		if old == o {
			return false
		}
		z.pods[k] = o
		z.clients.swap(old, o)
	case *Namespace:
		held := z.nss[o.Name]
		if held == o {
			return false
		}
		if !z.allowed(o.Name) {
			return true
		}
		if held != nil && reflect.DeepEqual(held, o) {
			z.nss[o.Name] = o // the newer copy, as for Services
			return true
		}
		was := z.exposed(o.Name)
		z.nss[o.Name] = o
		z.namespaceChanged(o.Name, was)
	}
	return true
}

// addSlice puts e among the slices of its Service, in place of the one of
// its name, and returns the Service's key.
func (z *Zone) addSlice(e *EndpointSlice) nsName {
	k := nsName{e.Namespace, e.Service}
	held := z.vi.ensure(k)
	held.slices = held.slices.with(e)
	return k
}

func (z *Zone) remove(key Key) {
	k := nsName{key.Namespace, key.Name}
	switch key.Kind {
	case KindService:
		e := z.vi.entry(k)
		if e == nil || e.svc == nil {
			return
		}
		z.nServices--
		e.svc = nil // the entry goes once its view has (publishService)
		z.dirty[k] = struct{}{}
	case KindEndpointSlice:
		old := z.slices[k]
		if old == nil {
			return
		}
		delete(z.slices, k)
		svc := nsName{old.Namespace, old.Service}
		if e := z.vi.entry(svc); e != nil {
			e.slices = e.slices.without(old.Name)
		}
		z.dirty[svc] = struct{}{}
	case KindPod:
		old := z.pods[k]
		if old == nil {
			return
		}
		z.clients.swap(old, nil)
		delete(z.pods, k)
	case KindNamespace:
		if z.nss[key.Name] == nil {
			return
		}
		was := z.exposed(key.Name)
		delete(z.nss, key.Name)
		z.namespaceChanged(key.Name, was)
	}
}

// commit rebuilds the Services marked dirty and, when anything changed,
// the apex with a new serial.
func (z *Zone) commit() {
	defer z.gen.Add(1)
	// A fresh set each time: a map grown by a full Replace never shrinks,
	// and iterating it would cost every later update the whole cluster.
	dirty := z.dirty
	z.dirty = make(map[nsName]struct{})
	early := z.atSync && !z.synced.Load()
	for k := range dirty {
		e := z.vi.entry(k)
		if e == nil {
			continue
		}
		if early && (e.svc == nil || len(e.slices) == 0) {
			// The Service, or its EndpointSlices, may be on their way:
			// each informer delivers its whole listing at once. Built
			// without them, it would be built again when they come.
			z.dirty[k] = struct{}{}
			continue
		}
		svc := e.svc
		if svc != nil && !z.exposed(k.ns) {
			svc = nil // held, not published
		}
		if z.publishService(e, svc) {
			z.changed = true
		}
	}
	if !z.changed {
		return
	}
	z.changed = false
	serial := uint32(z.now().Unix())
	if serial <= z.serial {
		serial = z.serial + 1
	}
	z.serial = serial
	z.setOwner("apex", z.buildApex())
	z.changed = false
}

// setOwner replaces what owner contributes. Only names whose records change,
// appear or vanish are written to the index, so an owner's update costs its
// own size even when it shares an empty non-terminal with thousands of
// others.
func (z *Zone) setOwner(owner string, next builder) {
	for _, name := range z.owners[owner] {
		if _, ok := next[name]; !ok {
			z.release(name, owner)
		}
	}
	if len(next) == 0 {
		delete(z.owners, owner)
		return
	}
	names := make([]string, 0, len(next))
	for name, c := range next {
		z.hold(name, owner, c)
		names = append(names, name)
	}
	z.owners[owner] = names
}

// hold makes c what owner contributes at name.
func (z *Zone) hold(name, owner string, c *contrib) {
	old := z.idx.get(name)
	switch {
	case old == nil:
		z.put(name, &Node{Name: name, Sets: group(c.rrs, c.extra), owner: owner})
	case old.holders == nil && old.owner == owner:
		n := &Node{Name: old.Name, Sets: group(c.rrs, c.extra), owner: owner}
		if !sameSets(old.Sets, n.Sets) {
			z.put(name, n)
		}
	case old.holders == nil: // a second holder arrives
		h := map[string]*contrib{old.owner: old.contrib(), owner: c}
		z.put(name, &Node{Name: old.Name, Sets: merge(h), holders: h})
	default:
		prev := old.holders[owner]
		// holders is the writer's alone (lookups never read it), so it
		// is updated in place under z.mu.
		old.holders[owner] = c
		if prev == nil && c.empty() || prev != nil && sameRRs(prev.rrs, c.rrs) && sameRRs(prev.extra, c.extra) {
			return // one more holder of an empty non-terminal, or no change
		}
		z.put(name, &Node{Name: old.Name, Sets: merge(old.holders), holders: old.holders})
	}
}

// release withdraws what owner contributes at name.
func (z *Zone) release(name, owner string) {
	old := z.idx.get(name)
	switch {
	case old == nil:
	case old.holders == nil:
		if old.owner == owner {
			z.put(name, nil)
		}
	default:
		c := old.holders[owner]
		if c == nil {
			return
		}
		delete(old.holders, owner)
		if len(old.holders) == 1 {
			for o, rest := range old.holders {
				z.put(name, &Node{Name: old.Name, Sets: group(rest.rrs, rest.extra), owner: o})
			}
			return
		}
		if c.empty() {
			return // an empty non-terminal that others still hold up
		}
		z.put(name, &Node{Name: old.Name, Sets: merge(old.holders), holders: old.holders})
	}
}

func (z *Zone) put(name string, n *Node) {
	z.changed = true
	z.idx.set(name, n)
}

func (c *contrib) empty() bool { return len(c.rrs) == 0 && len(c.extra) == 0 }

// contrib recovers what the single owner of n contributes.
func (n *Node) contrib() *contrib {
	c := &contrib{}
	for _, s := range n.Sets {
		c.rrs = append(c.rrs, s.RRs...)
		c.extra = append(c.extra, s.Extra...)
	}
	return c
}

// merge builds the sets of a name held by several owners, in owner order so
// that answers do not change order from one rebuild to the next.
func merge(holders map[string]*contrib) []RRSet {
	owners := make([]string, 0, len(holders))
	for o := range holders {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	var rrs, extra []dns.RR
	for _, o := range owners {
		rrs = append(rrs, holders[o].rrs...)
		extra = append(extra, holders[o].extra...)
	}
	return group(dedupe(rrs), dedupe(extra))
}

func sameSets(a, b []RRSet) bool {
	return slices.EqualFunc(a, b, func(x, y RRSet) bool {
		return x.Type == y.Type && sameRRs(x.RRs, y.RRs) && sameRRs(x.Extra, y.Extra)
	})
}

// group sorts records into sets by type, keeping their order within a type.
// Additional records belong to the SRV or NS set, the only ones that have any.
func group(rrs, extra []dns.RR) []RRSet {
	if len(rrs) == 0 {
		return nil
	}
	// Most names hold one type: share the slice rather than copy it.
	t := rrs[0].Header().Rrtype
	if !slices.ContainsFunc(rrs, func(rr dns.RR) bool { return rr.Header().Rrtype != t }) {
		set := RRSet{Type: t, RRs: rrs}
		if t == dns.TypeSRV || t == dns.TypeNS {
			set.Extra = extra
		}
		return []RRSet{set}
	}
	var sets []RRSet
	for _, rr := range rrs {
		t := rr.Header().Rrtype
		i := slices.IndexFunc(sets, func(s RRSet) bool { return s.Type == t })
		if i < 0 {
			sets = append(sets, RRSet{Type: t})
			i = len(sets) - 1
		}
		sets[i].RRs = append(sets[i].RRs, rr)
	}
	if len(extra) > 0 {
		for i := range sets {
			if sets[i].Type == dns.TypeSRV || sets[i].Type == dns.TypeNS {
				sets[i].Extra = extra
				break
			}
		}
	}
	slices.SortStableFunc(sets, func(a, b RRSet) int { return int(a.Type) - int(b.Type) })
	return sets
}

func dedupe(rrs []dns.RR) []dns.RR {
	seen := make(map[string]bool, len(rrs))
	out := rrs[:0:0]
	for _, rr := range rrs {
		s := rr.String()
		if !seen[s] {
			seen[s] = true
			out = append(out, rr)
		}
	}
	return out
}

func sameRRs(a, b []dns.RR) bool {
	return slices.EqualFunc(a, b, func(x, y dns.RR) bool {
		return x.Header().Ttl == y.Header().Ttl && dns.IsDuplicate(x, y)
	})
}

func isReverse(zone string) bool {
	return inZone(zone, "in-addr.arpa.") || inZone(zone, "ip6.arpa.")
}

// inZone reports whether name is zone or below it; both lower case, fully
// qualified.
func inZone(name, zone string) bool {
	if zone == "." {
		return true
	}
	if !strings.HasSuffix(name, zone) {
		return false
	}
	return len(name) == len(zone) || name[len(name)-len(zone)-1] == '.'
}

// join prefixes label to zone, minding the root zone.
func join(label, zone string) string {
	if zone == "." {
		return label + "."
	}
	return label + "." + zone
}

// EachHeld calls f with the key of each object of kind the zone holds, in
// namespace ns, or every namespace when ns is "": the Kubernetes source
// reconciles a relist against them, and keeps no store of its own. f runs
// under the zone's lock and must not call the zone.
func (z *Zone) EachHeld(kind Kind, ns string, f func(Key)) {
	z.mu.Lock()
	defer z.mu.Unlock()
	each := func(k nsName) {
		if ns == "" || k.ns == ns {
			f(Key{kind, k.ns, k.name})
		}
	}
	switch kind {
	case KindService:
		z.vi.entries(func(e *svcEntry) {
			if e.svc != nil {
				each(e.key)
			}
		})
	case KindEndpointSlice:
		for k := range z.slices {
			each(k)
		}
	case KindPod:
		for k := range z.pods {
			each(k)
		}
	case KindNamespace:
		for name := range z.nss {
			f(Key{Kind: KindNamespace, Name: name})
		}
	}
}

// Holds reports whether the zone holds obj itself, not an equal copy:
// updating it with obj would change nothing.
func (z *Zone) Holds(obj Object) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	k := obj.Key()
	switch o := obj.(type) {
	case *Service:
		e := z.vi.entry(nsName{k.Namespace, k.Name})
		return e != nil && e.svc == o
	case *EndpointSlice:
		return z.slices[nsName{k.Namespace, k.Name}] == o
	case *Pod:
		return z.pods[nsName{k.Namespace, k.Name}] == o
	case *Namespace:
		return z.nss[k.Name] == o
	}
	return false
}
