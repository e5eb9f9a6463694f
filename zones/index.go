package zones

import (
	"hash/maphash"
	"sync"

	"github.com/miekg/dns"
)

// Node is everything a Zone holds at one owner name: its record sets, each
// with the additional records an answer carries. A Node without sets is an
// empty non-terminal. Nodes are immutable once published: an update replaces
// the Node, so a reader may keep using the one it got.
type Node struct {
	// Name is the owner name, lower case and fully qualified.
	Name string
	Sets []RRSet

	// Who holds the name, for the writer only: lookups never read these.
	owner   string              // the one owner, when holders is nil
	holders map[string]*contrib // every owner's records, when several
}

// RRSet is the records of one type at a name.
type RRSet struct {
	Type uint16
	RRs  []dns.RR
	// Extra holds the records an answer puts in the additional section,
	// such as the addresses of SRV targets.
	Extra []dns.RR
}

// Get returns the set of type t, or nil.
func (n *Node) Get(t uint16) *RRSet {
	for i := range n.Sets {
		if n.Sets[i].Type == t {
			return &n.Sets[i]
		}
	}
	return nil
}

// shards spreads the names over independently locked maps so that a writer
// replacing one name never holds up readers of the others for long.
const shards = 64

// index maps lower-case owner names to Nodes. Readers take a shard's read lock
// for one map access; writers hold a shard's write lock for one assignment.
type index struct {
	seed   maphash.Seed
	shards [shards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*Node
	_  [40]byte // keep shards on separate cache lines
}

func newIndex() *index {
	ix := &index{seed: maphash.MakeSeed()}
	for i := range ix.shards {
		ix.shards[i].m = make(map[string]*Node)
	}
	return ix
}

func (ix *index) shard(name string) *shard {
	return &ix.shards[maphash.String(ix.seed, name)%shards]
}

func (ix *index) get(name string) *Node {
	s := ix.shard(name)
	s.mu.RLock()
	n := s.m[name]
	s.mu.RUnlock()
	return n
}

func (ix *index) set(name string, n *Node) {
	s := ix.shard(name)
	s.mu.Lock()
	if n == nil {
		delete(s.m, name)
	} else {
		s.m[name] = n
	}
	s.mu.Unlock()
}

// len counts the names; it is for metrics and tests, not the answer path.
func (ix *index) len() int {
	total := 0
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.RLock()
		total += len(s.m)
		s.mu.RUnlock()
	}
	return total
}
