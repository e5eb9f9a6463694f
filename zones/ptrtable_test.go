package zones

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"testing"
)

// TestPTRTableAgreesWithAMap applies random sets and removals to a
// ptrTable4 and to a map, through growth from empty to thousands of
// addresses and back to none, and checks every address after each round.
func TestPTRTableAgreesWithAMap(t *testing.T) {
	for _, tt := range []struct {
		name  string
		space int // addresses drawn from 10.0.0.0 up to this many
		ops   int
	}{
		{"few addresses, each set and removed often", 40, 2_000},
		{"growing past many bucket doublings", 50_000, 60_000},
		{"dense range, sorted neighbours in one bucket", 3_000, 20_000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(tt.space)))
			tab := ptrTable4{seed: r.Uint64()}
			model := map[[4]byte]*ptrEntry{}
			entries := make([]*ptrEntry, 16)
			for i := range entries {
				entries[i] = &ptrEntry{}
			}
			at := func(i int) [4]byte {
				return [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
			}
			check := func(round int) {
				t.Helper()
				if tab.n != len(model) {
					t.Fatalf("round %d: table holds %d addresses, model %d", round, tab.n, len(model))
				}
				for i := range tt.space {
					a := at(i)
					if got, want := tab.get(a, tab.hash(be32(a))), model[a]; got != want {
						t.Fatalf("round %d: %v: got %p, want %p", round, netip.AddrFrom4(a), got, want)
					}
				}
				for bi, b := range tab.buckets {
					if !slices.IsSorted(b.keys) || len(b.keys) != len(b.vals) {
						t.Fatalf("round %d: bucket %d unsorted or torn: %d keys, %d entries", round, bi, len(b.keys), len(b.vals))
					}
				}
			}
			// Grow towards mostly full, then empty it.
			for op := range tt.ops {
				a := at(r.IntN(tt.space))
				var p *ptrEntry
				if op < tt.ops*2/3 && r.IntN(4) != 0 || op >= tt.ops*2/3 && r.IntN(4) == 0 {
					p = entries[r.IntN(len(entries))]
				}
				_, want := model[a]
				if had := tab.set(a, tab.hash(be32(a)), p); had != want {
					t.Fatalf("op %d: set %v reported had=%v, want %v", op, netip.AddrFrom4(a), had, want)
				}
				if p == nil {
					delete(model, a)
				} else {
					model[a] = p
				}
				if op%(tt.ops/10) == 0 {
					check(op)
				}
			}
			check(tt.ops)
			for a := range model {
				tab.set(a, tab.hash(be32(a)), nil)
				delete(model, a)
			}
			check(-1)
			for bi, b := range tab.buckets {
				if b.keys != nil || b.vals != nil {
					t.Fatalf("bucket %d of an empty table keeps room for %d addresses", bi, cap(b.keys))
				}
			}
		})
	}
}

// TestPTRTableHashSpreadsAddresses checks that the hash puts a dense
// range (a Pod CIDR) in buckets of about the mean size: a hash that kept
// neighbours together would make some buckets long.
func TestPTRTableHashSpreadsAddresses(t *testing.T) {
	tab := ptrTable4{seed: 42}
	const n = 200_000
	for i := range n {
		a := [4]byte{10, 244, byte(i >> 8), byte(i)}
		a[1] += byte(i >> 16)
		tab.set(a, tab.hash(be32(a)), &ptrEntry{})
	}
	longest := 0
	for _, b := range tab.buckets {
		longest = max(longest, len(b.keys))
	}
	if mean := n / len(tab.buckets); longest > 3*mean {
		t.Fatalf("longest bucket %d, mean %d: the hash clusters addresses", longest, mean)
	}
}

// BenchmarkPTRTableMemory is the heap an IPv4 address's PTR entry costs in
// a table of a million (the entries themselves aside), against a map.
func BenchmarkPTRTableMemory(b *testing.B) {
	const n = 1_000_000
	p := &ptrEntry{}
	at := func(i int) [4]byte { return [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)} }
	b.Run("table", func(b *testing.B) {
		for b.Loop() {
			before := heap()
			tab := ptrTable4{seed: 1}
			for i := range n {
				a := at(i)
				tab.set(a, tab.hash(be32(a)), p)
			}
			after := heap()
			runtime.KeepAlive(&tab)
			b.ReportMetric(float64(after-before)/n, "bytes/address")
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			before := heap()
			m := map[[4]byte]*ptrEntry{}
			for i := range n {
				m[at(i)] = p
			}
			after := heap()
			runtime.KeepAlive(m)
			b.ReportMetric(float64(after-before)/n, "bytes/address")
		}
	})
}

// BenchmarkPTRTableGet is a lookup among a million addresses.
func BenchmarkPTRTableGet(b *testing.B) {
	const n = 1_000_000
	tab := ptrTable4{seed: 1}
	at := func(i int) [4]byte { return [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)} }
	for i := range n {
		a := at(i)
		tab.set(a, tab.hash(be32(a)), &ptrEntry{})
	}
	i := 0
	for b.Loop() {
		a := at(i % n)
		if tab.get(a, tab.hash(be32(a))) == nil {
			b.Fatal("missing")
		}
		i += 7919
	}
}
