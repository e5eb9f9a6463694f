package resolver

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	plog "github.com/svcdisc/svcdisc/plugin/log"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) lines(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), substr)
}

// With log, every query is logged once: the fast path's trial run of the
// chain (to learn whether a reply can be kept) logs nothing, and a query it
// declined once is not tried again.
func TestLogWritesOneLinePerQueryWithTheFastPathOn(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml"))
	var buf lockedBuf
	b := h.blocks[0].block
	b.Chain = &plog.Handler{Rules: []config.LogRule{{Name: ".", Format: "Q {name} {remote}", Classes: []string{"all"}}},
		Log: slog.New(slog.NewTextHandler(&buf, nil)), Next: b.Chain}
	addr := startServer(t, h)
	c := &dns.Client{Timeout: 2 * time.Second}
	for i := range 5 {
		m := new(dns.Msg)
		m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
		if _, _, err := c.Exchange(m, addr); err != nil {
			t.Fatal(err)
		}
		if got := buf.lines("Q web.shop.svc.cluster.local."); got != i+1 {
			t.Fatalf("after %d queries, %d log lines", i+1, got)
		}
	}
	if n := buf.lines("Q web.shop.svc.cluster.local. -"); n != 0 {
		t.Errorf("%d lines of the fast path's trial run (no remote)", n)
	}
}
