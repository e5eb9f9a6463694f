package main

import (
	"context"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/svcdisc/svcdisc/health"
)

// relistGCPercent is the GC target while a relist loads, when the API
// server returns, or while a reloaded configuration loads beside the
// running one: the cache's objects, the new ones and the decoded API
// objects they are made from are all alive then. Collected at the default
// pace, the garbage leaves the heap's spans holding a few long-lived
// objects among freed ones, and those pages stay resident: 161 MiB at the
// peak of a relist of 10,000 Services and 100,000 endpoints at 100, 98 MiB
// at 25 (81 MiB steady).
const relistGCPercent = 25

// firstLoadGCPercent is the GC target while the first view loads, at
// start: Go's default. Nothing else is in memory yet, so the peak is no
// concern, and the GC's cost is the time to ready: each cycle marks the
// whole view loaded so far. At 25 the sync of 10,000 Services ran 119
// cycles that took over half of its 3.3 CPU-seconds (31 cycles, 2.1 s at
// 100); with 100,000 Services (1.06 million endpoints) ready took 25.4 s
// at 25, 19.5 s at 50 and 12.9 s at 100. The pace does decide how much of
// the view's spans the garbage leaves empty but resident: with 100,000
// Services 182, 190 and 213 MiB resident after the sync at 25, 50 and
// 100, where CoreDNS holds 1.6 GiB. Under a memory limit the limit sets
// the pace instead.
const firstLoadGCPercent = 100

// steadyGCPercent is the GC target while serving, unless the operator set
// GOGC. A DNS server's heap is mostly its zone, which lives on between
// collections; at Go's default of 100 the heap grows to twice that before
// each one, and the garbage of building replies (the first query for each
// name) raised the resident size to 2.2–2.7 times the size after the sync
// (scalebench, 10,000 to 100,000 Services). At 50 it is 1.5 times what is
// live. The fast path allocates nothing, so the collections run only as
// often as the general path makes garbage.
const steadyGCPercent = 50

// useSteadyGC sets the serving GC target, unless the operator set GOGC.
func useSteadyGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(steadyGCPercent)
	}
}

var loadingGC = struct {
	mu    sync.Mutex
	n     int    // loads in progress
	first bool   // the first load is one of them
	saved int    // the GC percent before the first
	free  func() // debug.FreeOSMemory; tests count the calls
}{free: debug.FreeOSMemory}

// lowGCWhileLoading lowers the GC target for a load (each relist of an
// informer, a reload) to relistGCPercent, unless the operator set GOGC,
// and returns what ends that load. Overlapping loads share the lowered
// target; the last to end puts back the one before the first, and gives
// what the loads freed back to the system.
func lowGCWhileLoading() (done func()) { return beginLoad(false) }

// gcWhileFirstLoading is lowGCWhileLoading for the first load, at start:
// the target is firstLoadGCPercent while it runs, whatever other loads
// (the informers' first listings) run with it.
func gcWhileFirstLoading() (done func()) { return beginLoad(true) }

func beginLoad(first bool) (done func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	loadingGC.mu.Lock()
	if loadingGC.n == 0 {
		loadingGC.saved = debug.SetGCPercent(relistGCPercent)
	}
	loadingGC.n++
	loadingGC.first = loadingGC.first || first
	setLoadGC()
	loadingGC.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			loadingGC.mu.Lock()
			defer loadingGC.mu.Unlock()
			loadingGC.n--
			if first {
				loadingGC.first = false
			}
			if loadingGC.n > 0 {
				setLoadGC()
				return
			}
			debug.SetGCPercent(loadingGC.saved)
			// What the load freed goes back to the system now, not
			// over the scavenger's next minutes: after a relist of
			// 10,000 Services, 89 MiB resident instead of 98.
			go loadingGC.free()
		})
	}
}

// setLoadGC sets the target of the loads in progress. loadingGC.mu is held.
func setLoadGC() {
	p := relistGCPercent
	if loadingGC.first {
		p = firstLoadGCPercent
	}
	debug.SetGCPercent(p)
}

// whenReady calls done once every check passes, or when ctx ends.
func whenReady(ctx context.Context, checks []health.Check, done func()) {
	defer done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ready := true
		for _, c := range checks {
			ready = ready && c.Ready()
		}
		if ready {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
