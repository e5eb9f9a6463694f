package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// serverResult is one server at one step.
type serverResult struct {
	Ready                   float64   // seconds from start to /ready 200: the median of ReadyRuns
	ReadyRuns               []float64 // every start's: the step's, then -ready-rounds'
	ReadyCPU                []float64 // the CPU seconds each of those starts used until ready
	Ready2                  float64   // the same for the second replica (watcher phase), with the first one running
	RSS, SyncPeak           int64     // after the sync (settled), and VmHWM then
	RelistPeak, AfterRelist int64
	// BeforeRelist is the RSS just before the API server restart: the
	// steady state after serving (dnsperf's load, the GC's headroom),
	// which the relist's peak is compared with too.
	BeforeRelist                int64
	BurstPeak, AfterBurst       int64
	APICPU                      float64 // API server CPU seconds for one more replica's sync
	APIRSS                      int64   // API server RSS change with one more replica
	Dnsperf                     map[string]dnsperfResult
	RelistAnswers, BurstAnswers answers
}

// limitResult is svcdisc in the memory cgroup at one step.
type limitResult struct {
	LimitMiB                          int
	Synced                            bool
	Ready                             float64
	AliveAfterRelist, AliveAfterBurst bool
	OOMKills                          int
	PeakMiB                           float64 // the cgroup's peak charge (page cache included)
	RSS                               int64   // at the end of the step
	RelistAnswers                     answers
	Exit, Note                        string
}

// stepResult is everything measured at one cluster size.
type stepResult struct {
	N          int
	Counts     counts
	Fill       fillStats
	Servers    map[string]*serverResult
	Limited    *limitResult
	Burst      burstStats
	APIRestart float64 // seconds of the relist phase's restart and watch
}

// report is the whole run.
type report struct {
	Out, Command string
	Empty        map[string]int64 // RSS on an empty cluster
	Steps        []*stepResult
}

// write saves results.json and table.md in the results directory.
func (r *report) write() error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.Out, "results.json"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.Out, "table.md"), []byte(r.markdown()), 0o644)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// markdown renders the tables: per step a row for each server and one of
// svcdisc's ratios to CoreDNS.
func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("Command: `%s`\n\n", r.Command)
	if r.Empty != nil {
		p("Empty cluster: svcdisc %.1f MiB, CoreDNS %.1f MiB RSS.\n\n", mib(r.Empty["svcdisc"]), mib(r.Empty["coredns"]))
	}
	p("| Services | endpoints | server | ready s | RSS MiB | sync peak MiB | relist peak MiB | burst peak MiB | B/Service | B/endpoint | API server +CPU s / +MiB per watcher | A q/core | NXDOMAIN-mix q/core |\n")
	p("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, st := range r.Steps {
		if st.Servers == nil {
			continue
		}
		for _, kind := range []string{"svcdisc", "coredns"} {
			s := st.Servers[kind]
			if s == nil {
				continue
			}
			name := map[string]string{"svcdisc": "svcdisc", "coredns": "CoreDNS"}[kind]
			growth := float64(s.RSS - r.Empty[kind])
			perSvc, perEP := "–", "–"
			if r.Empty != nil {
				perSvc = fmt.Sprintf("%.0f", growth/float64(st.Counts.Services))
				perEP = fmt.Sprintf("%.0f", growth/float64(st.Counts.Endpoints))
			}
			p("| %d | %d | %s | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s |\n",
				st.Counts.Services, st.Counts.Endpoints, name, s.Ready, mib(s.RSS), mib(s.SyncPeak),
				peak(s.RelistPeak, s.RSS), peak(s.BurstPeak, s.RSS), perSvc, perEP,
				apiCost(s), qcore(s, "a"), qcore(s, "nxdomain"))
		}
		sd, cd := st.Servers["svcdisc"], st.Servers["coredns"]
		if sd != nil && cd != nil {
			p("| | | svcdisc ÷ CoreDNS | %s | %s | %s | %s | %s | | | | %s | %s |\n",
				ratio(sd.Ready, cd.Ready), ratio(float64(sd.RSS), float64(cd.RSS)), ratio(float64(sd.SyncPeak), float64(cd.SyncPeak)),
				ratio(float64(sd.RelistPeak), float64(cd.RelistPeak)), ratio(float64(sd.BurstPeak), float64(cd.BurstPeak)),
				ratio(sd.Dnsperf["a"].QCore, cd.Dnsperf["a"].QCore), ratio(sd.Dnsperf["nxdomain"].QCore, cd.Dnsperf["nxdomain"].QCore))
		}
	}
	p("\nReady s of every start (the step's own, svcdisc first, then -ready-rounds', CoreDNS first in odd rounds):")
	for _, st := range r.Steps {
		if sd, cd := st.Servers["svcdisc"], st.Servers["coredns"]; sd != nil && cd != nil && len(sd.ReadyRuns) > 1 {
			p(" %d Services: svcdisc %s, CoreDNS %s; CPU s until ready: svcdisc %s, CoreDNS %s;", st.N,
				runs(sd.ReadyRuns), runs(cd.ReadyRuns), runs(sd.ReadyCPU), runs(cd.ReadyCPU))
		}
	}
	p("\nReady s of the second replicas (watcher phase, started while the first ones run):")
	for _, st := range r.Steps {
		if sd, cd := st.Servers["svcdisc"], st.Servers["coredns"]; sd != nil && cd != nil && sd.Ready2 > 0 {
			p(" %d Services: svcdisc %.1f, CoreDNS %.1f (%s);", st.N, sd.Ready2, cd.Ready2, ratio(sd.Ready2, cd.Ready2))
		}
	}
	p("\n\nPeaks in parentheses are × the server's own RSS after sync. q/core is answers per second of the server's CPU time (dnsperf at full load, server on one core).\n")

	p("\n| Services | server | RSS MiB after sync | before relist | relist peak (× before) | after relist | after burst |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, st := range r.Steps {
		for _, kind := range []string{"svcdisc", "coredns"} {
			if s := st.Servers[kind]; s != nil {
				p("| %d | %s | %.1f | %.1f | %s | %.1f | %.1f |\n", st.N, kind, mib(s.RSS), mib(s.BeforeRelist),
					peak(s.RelistPeak, s.BeforeRelist), mib(s.AfterRelist), mib(s.AfterBurst))
			}
		}
	}

	p("\n| Services | server | relist: wrong / SERVFAIL / NXDOMAIN / lost of asked | burst: wrong / SERVFAIL / NXDOMAIN / lost of asked | A q/s | NXDOMAIN-mix q/s |\n| ---: | --- | --- | --- | ---: | ---: |\n")
	for _, st := range r.Steps {
		for _, kind := range []string{"svcdisc", "coredns"} {
			if s := st.Servers[kind]; s != nil {
				p("| %d | %s | %s | %s | %.0f | %.0f |\n", st.N, kind, s.RelistAnswers, s.BurstAnswers, s.Dnsperf["a"].QPS, s.Dnsperf["nxdomain"].QPS)
			}
		}
	}

	var limited bool
	for _, st := range r.Steps {
		limited = limited || st.Limited != nil
	}
	if limited {
		p("\nsvcdisc in a memory cgroup (container-style limit, page cache charged too):\n\n")
		p("| Services | limit MiB | synced (ready s) | alive after relist | alive after burst | OOM kills | cgroup peak MiB | RSS at end MiB | relist: wrong / SERVFAIL / NXDOMAIN / lost |\n| ---: | ---: | --- | --- | --- | ---: | ---: | ---: | --- |\n")
		for _, st := range r.Steps {
			if l := st.Limited; l != nil {
				synced := "no"
				if l.Synced {
					synced = fmt.Sprintf("yes (%.1f)", l.Ready)
				}
				p("| %d | %d | %s | %v | %v | %d | %.1f | %.1f | %s |\n", st.N, l.LimitMiB, synced, l.AliveAfterRelist, l.AliveAfterBurst, l.OOMKills, l.PeakMiB, mib(l.RSS), l.RelistAnswers)
			}
		}
	}

	p("\n| Services | fill: added Services / slices | fill s | objects/s | relist: API server down+up and watch s | burst updates/s (failed) |\n| ---: | --- | ---: | ---: | ---: | --- |\n")
	for _, st := range r.Steps {
		p("| %d | %d / %d | %.0f | %.0f | %.1f | %.0f (%d) |\n", st.N, st.Fill.Services, st.Fill.Slices, st.Fill.Took.Seconds(), st.Fill.Rate(), st.APIRestart, st.Burst.Rate(), st.Burst.Failed)
	}
	if f := r.formula(); f != "" {
		p("\n%s\n", f)
	}
	return b.String()
}

// runs lists times to ready, with their range.
func runs(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	var ss []string
	for _, x := range xs {
		ss = append(ss, fmt.Sprintf("%.1f", x))
	}
	return fmt.Sprintf("%s (%.1f–%.1f)", strings.Join(ss, " "), slices.Min(xs), slices.Max(xs))
}

func peak(v, base int64) string {
	if v == 0 {
		return "–"
	}
	if base == 0 {
		return fmt.Sprintf("%.1f", mib(v))
	}
	return fmt.Sprintf("%.1f (%.2f×)", mib(v), float64(v)/float64(base))
}

func apiCost(s *serverResult) string {
	if s.APICPU == 0 && s.APIRSS == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f / %+.0f", s.APICPU, mib(s.APIRSS))
}

func qcore(s *serverResult, mix string) string {
	d, ok := s.Dnsperf[mix]
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.0f", d.QCore)
}

// formula fits RSS = base + k × (Services + endpoints)/1000 (least squares
// over the steps), the form of CoreDNS's sizing rule with endpoints in
// place of Pods.
func (r *report) formula() string {
	var lines []string
	for _, kind := range []string{"svcdisc", "coredns"} {
		var xs, ys []float64
		for _, st := range r.Steps {
			if s := st.Servers[kind]; s != nil && s.RSS > 0 {
				xs = append(xs, float64(st.Counts.Services+st.Counts.Endpoints)/1000)
				ys = append(ys, mib(s.RSS))
			}
		}
		if len(xs) < 2 {
			continue
		}
		k, base := fit(xs, ys)
		lines = append(lines, fmt.Sprintf("%s: RSS ≈ %.2f × (Services + endpoints)/1000 + %.0f MiB", kind, k, base))
	}
	return strings.Join(lines, "\n")
}

// fit is the least-squares line y = k·x + c.
func fit(xs, ys []float64) (k, c float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	k = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	return k, (sy - k*sx) / n
}
