package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/svcdisc/svcdisc/config"
)

// reloadSyncTimeout bounds how long a reloaded configuration may take to
// see its cluster before it is given up and the running one kept.
const reloadSyncTimeout = time.Minute

// watchCorefile is the reload directive: it reads the Corefile every
// interval (with jitter, so replicas do not reload in step) and applies a
// changed one. A broken file is rejected with its file:line error and the
// running configuration stays.
func (in *instance) watchCorefile(ctx context.Context, path string, r *config.Reload) {
	last, _ := os.ReadFile(path)
	if m := in.current().met; m != nil {
		m.CorefileVersion(last)
	}
	for {
		d := r.Interval
		if r.Jitter > 0 {
			d += time.Duration(rand.Int64N(int64(2*r.Jitter))) - r.Jitter
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		data, err := os.ReadFile(path)
		if err != nil || bytes.Equal(data, last) {
			continue
		}
		last = data
		if err := in.reload(ctx, path, data); err != nil {
			in.log.Error("reload: configuration rejected, the running one stays", "err", err)
			in.countReload("failed")
			continue
		}
		in.log.Info("reload: configuration applied", "conf", path)
		in.countReload("success")
		if m := in.current().met; m != nil {
			m.CorefileVersion(data)
		}
	}
}

func (in *instance) countReload(status string) {
	if m := in.current().met; m != nil {
		m.CountReload(status)
	}
}

// reload builds the new configuration beside the running one, waits until
// its zones are synced, then swaps the handlers on the open sockets: no query
// is dropped, and none is answered SERVFAIL for want of a synced zone.
func (in *instance) reload(ctx context.Context, path string, data []byte) error {
	cfg, err := config.Parse(path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	p, err := build(cfg, in.flags, in.ready, in.log)
	if err != nil {
		return err
	}
	old := in.current()
	if !slices.Equal(sorted(p.order), sorted(old.order)) || !slices.Equal(sorted(slices.Collect(maps.Keys(p.muxes))), sorted(slices.Collect(maps.Keys(old.muxes)))) {
		return fmt.Errorf("%s: the listen addresses changed; restart svcdisc to apply that", path)
	}
	pctx, cancel := context.WithCancel(ctx)
	p.run(pctx, in.errc)
	deadline := time.Now().Add(reloadSyncTimeout)
	for !p.synced() {
		if time.Now().After(deadline) {
			cancel()
			return fmt.Errorf("%s: the new configuration's zones did not sync within %s", path, reloadSyncTimeout)
		}
		select {
		case <-ctx.Done():
			cancel()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, g := range p.loops {
		g.errc = in.errc
	}
	for addr, s := range in.servers {
		s.SetHandler(p.handler(addr, in.log))
	}
	for addr, s := range in.probes {
		s.SetHandler(p.muxes[addr])
	}
	in.ready.SetChecks(p.checks...)
	in.mu.Lock()
	in.plan, in.cancel, cancel = p, cancel, in.cancel
	in.mu.Unlock()
	cancel() // the old plan's sources and health checks
	return nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
