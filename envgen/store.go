package envgen

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/svcdisc/svcdisc/zones"
)

// Store holds the Services environment variables are made from. It is a
// zones.Sink and a zones.EventSink, so either object source can feed it; it
// keeps Services and ignores every other kind.
//
// Sets are computed per namespace when first asked for and kept until a
// Service of that namespace (or the default namespace's kubernetes Service)
// changes, so admitting Pods costs a map read, not a walk over Services.
type Store struct {
	mu     sync.RWMutex
	byNS   map[string]map[string]*zones.Service
	gen    map[string]uint64 // per namespace, bumped on every change
	sets   map[setKey]cachedSet
	synced atomic.Bool
}

type setKey struct {
	ns    string
	links bool
}

type cachedSet struct {
	nsGen, masterGen uint64
	set              *Set
}

// NewStore returns an empty, unsynced store.
func NewStore() *Store {
	return &Store{
		byNS: make(map[string]map[string]*zones.Service),
		gen:  make(map[string]uint64),
		sets: make(map[setKey]cachedSet),
	}
}

// Update implements zones.EventSink.
func (s *Store) Update(obj zones.Object) {
	svc, ok := obj.(*zones.Service)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byNS[svc.Namespace]
	if m == nil {
		m = make(map[string]*zones.Service)
		s.byNS[svc.Namespace] = m
	}
	m[svc.Name] = svc
	s.gen[svc.Namespace]++
}

// Delete implements zones.EventSink.
func (s *Store) Delete(key zones.Key) {
	if key.Kind != zones.KindService {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.byNS[key.Namespace]; m != nil {
		delete(m, key.Name)
		if len(m) == 0 {
			delete(s.byNS, key.Namespace)
		}
	}
	s.gen[key.Namespace]++
}

// Replace implements zones.Sink.
func (s *Store) Replace(objs []zones.Object) {
	byNS := make(map[string]map[string]*zones.Service)
	for _, o := range objs {
		if svc, ok := o.(*zones.Service); ok {
			m := byNS[svc.Namespace]
			if m == nil {
				m = make(map[string]*zones.Service)
				byNS[svc.Namespace] = m
			}
			m[svc.Name] = svc
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ns := range s.byNS {
		s.gen[ns]++
	}
	for ns := range byNS {
		s.gen[ns]++
	}
	s.byNS = byNS
	s.sets = make(map[setKey]cachedSet)
}

// MarkSynced implements both sinks: the source has delivered a complete
// set at least once.
func (s *Store) MarkSynced() { s.synced.Store(true) }

// Synced reports whether the source has delivered a complete set. Until
// then the webhook is not ready: an incomplete set would silently give Pods
// fewer variables than kubelet.
func (s *Store) Synced() bool { return s.synced.Load() }

// Len is the number of Services held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, m := range s.byNS {
		n += len(m)
	}
	return n
}

// Service returns one Service, or nil.
func (s *Store) Service(ns, name string) *zones.Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byNS[ns][name]
}

// Services returns the Services of a namespace, sorted by name.
func (s *Store) Services(ns string) []*zones.Service {
	s.mu.RLock()
	out := make([]*zones.Service, 0, len(s.byNS[ns]))
	for _, svc := range s.byNS[ns] {
		out = append(out, svc)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *zones.Service) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Env returns the variables kubelet gives a container of a Pod in namespace
// ns whose spec.enableServiceLinks is links (kubelet's
// getServiceEnvVarMap): with links, every Service with a cluster IP in ns;
// always, the kubernetes Service of the default namespace, unless ns has its
// own Service of that name and links is on, in which case the local one
// wins, as in kubelet.
func (s *Store) Env(ns string, links bool) *Set {
	k := setKey{ns, links}
	s.mu.RLock()
	nsGen, masterGen := s.gen[ns], s.gen[masterNamespace]
	c, ok := s.sets[k]
	s.mu.RUnlock()
	if ok && c.nsGen == nsGen && c.masterGen == masterGen {
		return c.set
	}

	s.mu.RLock()
	nsGen, masterGen = s.gen[ns], s.gen[masterNamespace]
	byName := make(map[string]*zones.Service)
	if m := s.byNS[masterNamespace]; m != nil {
		if svc := m[masterService]; svc != nil && hasClusterIP(svc) {
			byName[masterService] = svc
		}
	}
	if links {
		for name, svc := range s.byNS[ns] {
			if !hasClusterIP(svc) {
				continue
			}
			if ns == masterNamespace && name == masterService {
				continue // taken above
			}
			byName[name] = svc
		}
	}
	s.mu.RUnlock()
	svcs := make([]*zones.Service, 0, len(byName))
	for _, svc := range byName {
		svcs = append(svcs, svc)
	}
	set := newSet(svcs)

	s.mu.Lock()
	s.sets[k] = cachedSet{nsGen: nsGen, masterGen: masterGen, set: set}
	s.mu.Unlock()
	return set
}

// Select returns the variables of the Services named by refs, across
// namespaces, plus the master Service kubelet always adds. Services that do
// not exist or have no cluster IP are reported in missing. Two Services of
// one name cannot both be given (their variables have the same names): the
// first one listed wins and the other is reported in clashes.
func (s *Store) Select(refs []Ref) (set *Set, missing, clashes []Ref) {
	byName := make(map[string]*zones.Service)
	for _, r := range refs {
		svc := s.Service(r.Namespace, r.Name)
		if svc == nil || !hasClusterIP(svc) {
			missing = append(missing, r)
			continue
		}
		if prev, ok := byName[svc.Name]; ok {
			if prev != svc {
				clashes = append(clashes, r)
			}
			continue
		}
		byName[svc.Name] = svc
	}
	if _, ok := byName[masterService]; !ok {
		if svc := s.Service(masterNamespace, masterService); svc != nil && hasClusterIP(svc) {
			byName[masterService] = svc
		}
	}
	svcs := make([]*zones.Service, 0, len(byName))
	for _, svc := range byName {
		svcs = append(svcs, svc)
	}
	return newSet(svcs), missing, clashes
}

// Ref names a Service.
type Ref struct{ Namespace, Name string }

func (r Ref) String() string { return r.Name + "." + r.Namespace }
