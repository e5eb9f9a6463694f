package main

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func TestMemoryLimitFollowsTheCgroupUnlessTheOperatorSetOne(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name        string
		gomemlimit  string // the environment variable
		automem     string // AUTOMEMLIMIT, "" for unset
		limit       memlimit.Provider
		want        int64
		wantAsked   bool
		wantLogLine string
	}{
		{
			name:        "GOMEMLIMIT set by the operator is left alone",
			gomemlimit:  "100MiB",
			limit:       memlimit.Limit(170 * mib),
			want:        math.MaxInt64, // what the test process runs with
			wantLogLine: "memory limit set by GOMEMLIMIT",
		},
		{
			name:        "no cgroup limit (memory.max is max) sets none",
			limit:       func() (uint64, error) { return 0, memlimit.ErrNoLimit },
			want:        math.MaxInt64,
			wantAsked:   true,
			wantLogLine: "the cgroup has no memory limit",
		},
		{
			name:        "a cgroup limit gives 90% of it to the heap",
			limit:       memlimit.Limit(170 * mib),
			want:        int64(170 * mib * memLimitRatio),
			wantAsked:   true,
			wantLogLine: "memory limit set from the cgroup",
		},
		{
			name:        "AUTOMEMLIMIT overrides the ratio",
			automem:     "0.5",
			limit:       memlimit.Limit(170 * mib),
			want:        85 * mib,
			wantAsked:   true,
			wantLogLine: "memory limit set from the cgroup",
		},
		{
			name:        "AUTOMEMLIMIT=off sets none",
			automem:     "off",
			limit:       memlimit.Limit(170 * mib),
			want:        math.MaxInt64,
			wantLogLine: "AUTOMEMLIMIT is off",
		},
		{
			name:        "an unreadable cgroup sets none and serving goes on",
			limit:       func() (uint64, error) { return 0, errors.New("process is not in cgroup") },
			want:        math.MaxInt64,
			wantAsked:   true,
			wantLogLine: "the cgroup's cannot be read",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := debug.SetMemoryLimit(-1)
			if before != math.MaxInt64 {
				t.Fatalf("the test process runs with a memory limit (%d): unset GOMEMLIMIT", before)
			}
			t.Cleanup(func() { debug.SetMemoryLimit(before) })
			t.Setenv("GOMEMLIMIT", tt.gomemlimit)
			t.Setenv("AUTOMEMLIMIT", tt.automem)
			if tt.automem == "" {
				os.Unsetenv("AUTOMEMLIMIT") // t.Setenv puts it back
			}
			asked := false
			provider := func() (uint64, error) {
				asked = true
				return tt.limit()
			}
			var logs bytes.Buffer
			m := setMemoryLimit(provider)
			m.log(slog.New(slog.NewTextHandler(&logs, nil)))
			if got := m.bytes; got != tt.want {
				t.Errorf("setMemoryLimit = %d, want %d", got, tt.want)
			}
			if now := debug.SetMemoryLimit(-1); now != tt.want {
				t.Errorf("runtime memory limit = %d, want %d", now, tt.want)
			}
			if asked != tt.wantAsked {
				t.Errorf("cgroup limit read = %v, want %v", asked, tt.wantAsked)
			}
			if !strings.Contains(logs.String(), tt.wantLogLine) {
				t.Errorf("log %q does not say %q", logs.String(), tt.wantLogLine)
			}
		})
	}
}
