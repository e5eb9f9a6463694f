package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// memLimitRatio is the share of the container's memory limit given to the
// Go heap as its soft limit. The rest is for what the GC does not count
// against GOMEMLIMIT's target in time: goroutine stacks grown under load,
// pages freed but not yet returned, the binary's own mapped text.
const memLimitRatio = 0.9

// setMemoryLimit sets the Go runtime's soft memory limit (GOMEMLIMIT) to
// memLimitRatio of the memory limit limit() reports (the cgroup's
// memory.max or memory.limit_in_bytes), so that near the container's limit
// the GC collects harder instead of the kernel OOM-killing the server: a
// relist briefly holds more than the steady state. The operator's
// GOMEMLIMIT, when set, is left alone, as is a process with no limit.
// AUTOMEMLIMIT overrides the ratio, or is "off". It returns the limit in
// force afterwards (math.MaxInt64 for none).
func setMemoryLimit(limit memlimit.Provider, log *slog.Logger) int64 {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		n := debug.SetMemoryLimit(-1)
		log.Info("memory limit set by GOMEMLIMIT", "GOMEMLIMIT", v, "bytes", n)
		return n
	}
	var asked bool
	var found uint64
	got, err := memlimit.Set(memlimit.WithRatio(memLimitRatio), memlimit.WithProvider(func() (uint64, error) {
		asked = true
		n, err := limit()
		found = n
		return n, err
	}))
	switch {
	case !asked && err == nil:
		log.Info("memory limit: none set, AUTOMEMLIMIT is off")
	case err != nil:
		// Not in a cgroup, or one we cannot read: the server runs as it
		// would without this, with no soft limit.
		log.Info("memory limit: none set, the cgroup's cannot be read", "err", err)
	case found == 0 || got == math.MaxInt64: // memlimit.ErrNoLimit
		log.Info("memory limit: none, the cgroup has no memory limit")
	default:
		log.Info("memory limit set from the cgroup", "cgroup_limit", found, "GOMEMLIMIT", got)
	}
	return got
}
