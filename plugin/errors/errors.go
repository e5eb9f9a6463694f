// Package errors is the errors directive's handler: it logs what went wrong
// behind a failed reply (an upstream that did not answer, a zone not yet
// synced), and, with consolidate, counts errors that match a pattern and
// logs their number once per period instead of each one.
package errors

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "errors"

// Handler logs the errors of the handlers after it.
type Handler struct {
	Consolidate []config.Consolidate
	Log         *slog.Logger
	Next        plugin.Handler

	mu     sync.Mutex
	counts []int // per Consolidate rule, since the last report
}

// Name implements plugin.Handler.
func (e *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler.
func (e *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	m := plugin.Next(ctx, e.Next, st)
	if st.Err == nil || st.Remote == nil { // no error, or the fast path's trial run
		return m
	}
	msg := st.Err.Error()
	for i, c := range e.Consolidate {
		if c.Regexp.MatchString(msg) {
			e.mu.Lock()
			if e.counts == nil {
				e.counts = make([]int, len(e.Consolidate))
			}
			e.counts[i]++
			e.mu.Unlock()
			return m
		}
	}
	e.Log.Error(dns.RcodeToString[m.Rcode], "name", st.Req.Question[0].Name, "type", dns.TypeToString[st.Type],
		"by", st.By, "err", msg)
	return m
}

// Run reports the consolidated errors once per period of each rule until
// ctx ends.
func (e *Handler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, c := range e.Consolidate {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(c.Period)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				e.mu.Lock()
				n := 0
				if e.counts != nil {
					n, e.counts[i] = e.counts[i], 0
				}
				e.mu.Unlock()
				if n > 0 {
					e.Log.Log(ctx, level(c.Level), fmt.Sprintf("%d errors like '%s' occurred in last %s", n, c.Regexp, c.Period))
				}
			}
		}()
	}
	wg.Wait()
}

func level(s string) slog.Level {
	switch s {
	case "warning":
		return slog.LevelWarn
	case "info":
		return slog.LevelInfo
	case "debug":
		return slog.LevelDebug
	}
	return slog.LevelError
}

var _ plugin.Handler = (*Handler)(nil)
