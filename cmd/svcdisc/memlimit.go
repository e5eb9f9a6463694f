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

// memLimit is what setMemoryLimit decided, to be logged once the server
// is up: a configuration error must stay the one line on stderr.
type memLimit struct {
	bytes int64 // the limit in force, math.MaxInt64 for none
	msg   string
	attrs []any
}

func (m memLimit) log(log *slog.Logger) { log.Info(m.msg, m.attrs...) }

// setMemoryLimit sets the Go runtime's soft memory limit (GOMEMLIMIT) to
// memLimitRatio of the memory limit limit() reports (the cgroup's
// memory.max or memory.limit_in_bytes), so that near the container's limit
// the GC collects harder instead of the kernel OOM-killing the server: a
// relist briefly holds more than the steady state. The operator's
// GOMEMLIMIT, when set, is left alone, as is a process with no limit.
// AUTOMEMLIMIT overrides the ratio, or is "off".
func setMemoryLimit(limit memlimit.Provider) memLimit {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		n := debug.SetMemoryLimit(-1)
		return memLimit{n, "memory limit set by GOMEMLIMIT", []any{"GOMEMLIMIT", v, "bytes", n}}
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
		return memLimit{got, "memory limit: none set, AUTOMEMLIMIT is off", nil}
	case err != nil:
		// Not in a cgroup, or one we cannot read: the server runs as it
		// would without this, with no soft limit.
		return memLimit{got, "memory limit: none set, the cgroup's cannot be read", []any{"err", err}}
	case found == 0 || got == math.MaxInt64: // memlimit.ErrNoLimit
		return memLimit{got, "memory limit: none, the cgroup has no memory limit", nil}
	}
	return memLimit{got, "memory limit set from the cgroup", []any{"cgroup_limit", found, "GOMEMLIMIT", got}}
}
