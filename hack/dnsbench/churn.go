package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// churn rewrites dir/churn.yaml rate times a second until ctx is done: a
// Namespace "churn" with services headless Services churn-<i> of endpoints
// endpoints each, and at every tick the next endpoint in turn flips between
// ready and not ready. Each rewrite is atomic (a temporary file, then a
// rename), so a watcher never reads half a file.
func churn(ctx context.Context, dir string, rate float64, services, endpoints int) error {
	ips := prefixRange(netip.MustParsePrefix("10.252.0.0/16")).skip()
	var hs []headless
	var ready [][]bool
	for i := range services {
		h := headless{NS: "churn", Name: fmt.Sprintf("churn-%d", i),
			Port: port{"http", "TCP", 80}, EPPort: port{"http", "TCP", 8080}}
		for range endpoints {
			ip, err := ips.next()
			if err != nil {
				return err
			}
			h.Addrs = append(h.Addrs, ip)
		}
		hs = append(hs, h)
		r := make([]bool, endpoints)
		for j := range r {
			r[j] = true
		}
		ready = append(ready, r)
	}
	path := filepath.Join(dir, "churn.yaml")
	write := func() error {
		var buf bytes.Buffer
		ew := &errWriter{w: &buf}
		ew.printf("# written by dnsbench churn; rewritten %g times a second\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: churn}\n", rate)
		for i, h := range hs {
			writeHeadless(ew, h, ready[i])
		}
		if ew.err != nil {
			return ew.err
		}
		return replaceFile(path, buf.Bytes())
	}
	if err := write(); err != nil {
		return err
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	start, flips := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "dnsbench churn: %d flips in %.1fs\n", flips, time.Since(start).Seconds())
			return nil
		case <-t.C:
		}
		i := flips % (services * endpoints)
		s, e := i/endpoints, i%endpoints
		ready[s][e] = !ready[s][e]
		if err := write(); err != nil {
			return err
		}
		flips++
	}
}

// replaceFile writes data to path through a temporary file in the same
// directory, whose name no manifest watcher reads (it ends in .tmp).
func replaceFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
