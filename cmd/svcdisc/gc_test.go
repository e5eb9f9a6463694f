package main

import (
	"context"
	"log/slog"
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

func TestGCRunsAtTheLoadPaceUntilEveryZoneIsSynced(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Fatal("GOGC is set: the test needs the default GC pace")
	}
	before := gcPercent()
	freed := make(chan struct{}, 10)
	setFree := func(f func()) {
		loadingGC.mu.Lock()
		loadingGC.free = f
		loadingGC.mu.Unlock()
	}
	setFree(func() { freed <- struct{}{} })
	defer setFree(debug.FreeOSMemory)
	done1 := lowGCWhileLoading()
	if got := gcPercent(); got != loadGCPercent {
		t.Fatalf("while loading GC percent = %d, want %d", got, loadGCPercent)
	}
	done2 := lowGCWhileLoading() // an overlapping load
	done1()
	done1() // ending twice changes nothing
	if got := gcPercent(); got != loadGCPercent {
		t.Fatalf("with a load still running GC percent = %d, want %d", got, loadGCPercent)
	}
	if len(freed) != 0 {
		t.Fatal("memory given back while a load still runs")
	}
	done2()
	if got := gcPercent(); got != before {
		t.Fatalf("after the loads GC percent = %d, want %d back", got, before)
	}
	<-freed // what the loads freed goes back to the system

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
