package main

import (
	"context"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/svcdisc/svcdisc/health"
)

// loadGCPercent is the GC target while the first view of the cluster loads.
// Parsing manifests or listing a large cluster makes several times the
// zone's size in garbage. Collected at the default pace, it leaves the
// heap's spans holding a few long-lived objects among freed ones, and
// those pages stay resident: with the dnsbench cluster (10,000 Services)
// the server is resident at about 43 MiB after loading at 100, 36 MiB at
// 25. Once loaded, the default pace comes back. A relist, when the API
// server returns, is the same: 161 MiB resident at its peak with 10,000
// Services and 100,000 endpoints at 100, 98 MiB at 25 (81 MiB steady).
const loadGCPercent = 25

var loadingGC = struct {
	mu    sync.Mutex
	n     int    // loads in progress
	saved int    // the GC percent before the first
	free  func() // debug.FreeOSMemory; tests count the calls
}{free: debug.FreeOSMemory}

// lowGCWhileLoading lowers the GC target for a load (the first one, and
// each relist of an informer), unless the operator set GOGC, and returns
// what ends that load. Overlapping loads share the
// lowered target; the last to end puts back the one before the first.
func lowGCWhileLoading() (done func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	loadingGC.mu.Lock()
	if loadingGC.n == 0 {
		loadingGC.saved = debug.SetGCPercent(loadGCPercent)
	}
	loadingGC.n++
	loadingGC.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			loadingGC.mu.Lock()
			defer loadingGC.mu.Unlock()
			if loadingGC.n--; loadingGC.n == 0 {
				debug.SetGCPercent(loadingGC.saved)
				// What the load freed goes back to the system now, not
				// over the scavenger's next minutes: after a relist of
				// 10,000 Services, 89 MiB resident instead of 98.
				go loadingGC.free()
			}
		})
	}
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
