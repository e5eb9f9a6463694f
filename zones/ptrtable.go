package zones

import (
	"slices"
)

// ptrTable4 maps IPv4 addresses to their PTR sets. A cluster has one entry
// per endpoint and cluster IP (1.16 million with 100,000 Services), and a
// Go map of them cost some 41 bytes each (a 16-byte slot, its control
// byte, a table between half and seven-eighths full): 48 MB of the 131 MB
// a 100,000-Service zone held. Here the addresses are hashed to buckets of
// sorted keys with their entries beside them, 12 bytes an address and a
// little slack, and a lookup is a binary search of a few dozen keys.
//
// The caller hashes the address with the table's hash (its low bits chose
// the lock shard the table sits in) and holds that shard's lock.
type ptrTable4 struct {
	buckets []ptrBucket4 // a power of two of them, or none
	n       int
	seed    uint64 // the same in every shard: it chose the shard too
}

type ptrBucket4 struct {
	keys []uint32 // sorted
	vals []*ptrEntry
}

const (
	// ptrBucketLoad is the mean bucket size at which the table doubles
	// its buckets: small enough that an insert moves a few hundred bytes,
	// large enough that the buckets' own headers (48 bytes) cost about a
	// byte an address.
	ptrBucketLoad = 64
	// ptrShardBits are the hash bits that chose the lock shard, and are
	// the same for every address in one table.
	ptrShardBits = 6
)

// The shard is the hash's low ptrShardBits bits (h % shards).
var _ [shards - 1<<ptrShardBits]struct{}
var _ [1<<ptrShardBits - shards]struct{}

// bucket is the bucket of an address whose hash is h.
func (t *ptrTable4) bucket(h uint64) *ptrBucket4 {
	return &t.buckets[(h>>ptrShardBits)&uint64(len(t.buckets)-1)]
}

// get returns the entry of a, whose hash (t.hash) is h, or nil.
func (t *ptrTable4) get(a [4]byte, h uint64) *ptrEntry {
	if t.n == 0 {
		return nil
	}
	b := t.bucket(h)
	if i, ok := slices.BinarySearch(b.keys, be32(a)); ok {
		return b.vals[i]
	}
	return nil
}

// set makes p the entry of a (p nil: removes it) and reports whether a had
// one before.
func (t *ptrTable4) set(a [4]byte, h uint64, p *ptrEntry) (had bool) {
	if p != nil && t.n >= ptrBucketLoad*len(t.buckets) {
		t.grow()
	}
	if len(t.buckets) == 0 {
		return false // nothing to remove
	}
	b := t.bucket(h)
	k := be32(a)
	i, found := slices.BinarySearch(b.keys, k)
	switch {
	case found && p != nil:
		b.vals[i] = p
	case found:
		b.keys = slices.Delete(b.keys, i, i+1)
		b.vals = slices.Delete(b.vals, i, i+1)
		t.n--
		b.shrink()
	case p != nil:
		b.insert(i, k, p)
		t.n++
	}
	return found
}

// insert puts k and p at i, growing by an eighth rather than append's
// doubling: the slack of a million addresses is what this table saves.
func (b *ptrBucket4) insert(i int, k uint32, p *ptrEntry) {
	if len(b.keys) == cap(b.keys) {
		// Not slices.Grow: it grows by append's rule, doubling small
		// slices.
		n := len(b.keys) + len(b.keys)/8 + 4
		b.keys = append(make([]uint32, 0, n), b.keys...)
		b.vals = append(make([]*ptrEntry, 0, n), b.vals...)
	}
	b.keys = slices.Insert(b.keys, i, k)
	b.vals = slices.Insert(b.vals, i, p)
}

// shrink gives back a bucket's room once it holds under half of it: a
// cluster that shrank keeps no bucket at its largest.
func (b *ptrBucket4) shrink() {
	if len(b.keys) == 0 {
		b.keys, b.vals = nil, nil
		return
	}
	if cap(b.keys) > 16 && len(b.keys) < cap(b.keys)/2 {
		b.keys = slices.Clip(slices.Clone(b.keys))
		b.vals = slices.Clip(slices.Clone(b.vals))
	}
}

// grow doubles the buckets (or makes the first), moving each address to
// the one its hash now picks. The hash is not kept, so it is recomputed
// from the address.
func (t *ptrTable4) grow() {
	old := t.buckets
	t.buckets = make([]ptrBucket4, max(2*len(old), 1))
	// Count first, so that each new bucket is made once at its size:
	// appending would leave up to twice the room in each.
	sizes := make([]int32, len(t.buckets))
	for _, b := range old {
		for _, k := range b.keys {
			sizes[t.index(k)]++
		}
	}
	for i, n := range sizes {
		if n > 0 {
			t.buckets[i] = ptrBucket4{keys: make([]uint32, 0, n), vals: make([]*ptrEntry, 0, n)}
		}
	}
	for _, b := range old {
		for j, k := range b.keys {
			// Keys come in order within an old bucket, and an old bucket
			// splits into two new ones: each append is at the end.
			nb := &t.buckets[t.index(k)]
			nb.keys = append(nb.keys, k)
			nb.vals = append(nb.vals, b.vals[j])
		}
	}
}

// index is the bucket of k.
func (t *ptrTable4) index(k uint32) int {
	return int((t.hash(k) >> ptrShardBits) & uint64(len(t.buckets)-1))
}

// hash is the hash of an address, k its bytes in network order: a seeded
// mix (splitmix64's finalizer), as cheap as a multiply or two, so that
// growing need not keep the hashes.
func (t *ptrTable4) hash(k uint32) uint64 {
	x := uint64(k) ^ t.seed
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func be32(a [4]byte) uint32 {
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}
