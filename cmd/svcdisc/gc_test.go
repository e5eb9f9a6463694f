package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/svcdisc/svcdisc/config"
)

// gcPercent reads the GC target (SetGCPercent is the only way to read it).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// countFrees makes the loads count their calls to free instead of
// calling debug.FreeOSMemory, until the test ends.
func countFrees(t *testing.T) chan struct{} {
	t.Helper()
	if _, set := os.LookupEnv("GOGC"); set {
		t.Fatal("GOGC is set: the test needs the default GC pace")
	}
	freed := make(chan struct{}, 10)
	setFree := func(f func()) {
		loadingGC.mu.Lock()
		loadingGC.free = f
		loadingGC.mu.Unlock()
	}
	setFree(func() { freed <- struct{}{} })
	t.Cleanup(func() { setFree(debug.FreeOSMemory) })
	return freed
}

// otherPace sets a GC target unlike any load's for the test, so that a
// load that kept the one before would show.
func otherPace(t *testing.T) {
	prev := debug.SetGCPercent(firstLoadGCPercent + 7)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
}

func wantGCPercent(t *testing.T, when string, want int) {
	t.Helper()
	if got := gcPercent(); got != want {
		t.Fatalf("%s: GC percent = %d, want %d", when, got, want)
	}
}

func TestGCRunsAtTheRelistPaceWhileARelistLoads(t *testing.T) {
	freed := countFrees(t)
	before := gcPercent()
	done1 := lowGCWhileLoading()
	wantGCPercent(t, "while a relist loads", relistGCPercent)
	done2 := lowGCWhileLoading() // an overlapping load
	done1()
	done1() // ending twice changes nothing
	wantGCPercent(t, "with a relist still loading", relistGCPercent)
	if len(freed) != 0 {
		t.Fatal("memory given back while a load still runs")
	}
	done2()
	wantGCPercent(t, "after the relists", before)
	<-freed // what the loads freed goes back to the system
}

func TestTheFirstLoadRunsAtItsOwnPaceWhateverListsWithIt(t *testing.T) {
	freed := countFrees(t)
	otherPace(t)
	before := gcPercent()
	first := gcWhileFirstLoading()
	wantGCPercent(t, "while the first view loads", firstLoadGCPercent)
	listing := lowGCWhileLoading() // an informer's first listing
	wantGCPercent(t, "while an informer lists for the first view", firstLoadGCPercent)
	listing()
	wantGCPercent(t, "after that listing", firstLoadGCPercent)
	relist := lowGCWhileLoading() // the API server went away and came back
	first()
	wantGCPercent(t, "once the first view is in, with a relist loading", relistGCPercent)
	if len(freed) != 0 {
		t.Fatal("memory given back while a load still runs")
	}
	relist()
	wantGCPercent(t, "after every load", before)
	<-freed
}

func TestServeLoadsTheFirstViewAtTheFirstLoadPaceUntilSynced(t *testing.T) {
	countFrees(t)
	otherPace(t)
	before := gcPercent()
	// An API server that never answers: the zone never syncs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(".:53 {\n    kubernetes cluster.local {\n        endpoint http://%s\n    }\n}\n", addr)
	cfg, err := config.Parse("Corefile", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in, err := start(ctx, cfg, serveFlags{dnsAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	wantGCPercent(t, "while the first view loads", firstLoadGCPercent)
	cancel()
	in.shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for gcPercent() != before {
		if time.Now().After(deadline) {
			t.Fatalf("GC percent %d ten seconds after the stop, want %d back", gcPercent(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGCRunsAtTheLoadPaceUntilEveryZoneIsSynced(t *testing.T) {
	countFrees(t)
	before := gcPercent()
	// Wired into serve: the target is back once /ready would say 200.
	cfg, err := config.Parse("Corefile", strings.NewReader(".:53 {\n    kubernetes cluster.local\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := start(ctx, cfg, serveFlags{manifests: "../../examples", dnsAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer in.shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for gcPercent() != before {
		if time.Now().After(deadline) {
			t.Fatalf("GC percent %d ten seconds after start, want %d back", gcPercent(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Serving runs at the steady GC pace, unless the operator set GOGC: then
// the operator's pace stands.
func TestServingRunsAtTheSteadyPaceUnlessGOGCIsSet(t *testing.T) {
	before := gcPercent()
	t.Cleanup(func() { debug.SetGCPercent(before) })
	for _, tt := range []struct {
		name string
		gogc string // "" for unset
		want int
	}{
		{"GOGC unset", "", steadyGCPercent},
		{"GOGC set", "200", 137},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			if tt.gogc == "" {
				os.Unsetenv("GOGC")
			}
			debug.SetGCPercent(137) // what the runtime took from GOGC, say
			useSteadyGC()
			if got := gcPercent(); got != tt.want {
				t.Errorf("GC percent %d, want %d", got, tt.want)
			}
		})
	}
}
