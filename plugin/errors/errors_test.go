package errors

import (
	"bytes"
	"context"
	stderrors "errors"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

type failing struct{ err error }

func (failing) Name() string { return "forward" }
func (f failing) ServeDNS(_ context.Context, st *plugin.State) *dns.Msg {
	st.Err = f.err
	return st.Error("forward", dns.RcodeServerFailure)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func ask(h plugin.Handler) {
	r := new(dns.Msg)
	r.SetQuestion("www.example.org.", dns.TypeA)
	client := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5353}
	h.ServeDNS(context.Background(), plugin.NewState(r, ".", client, "udp"))
}

func TestErrorsLogsEachErrorWithTheQuery(t *testing.T) {
	var buf syncBuffer
	h := &Handler{Log: slog.New(slog.NewTextHandler(&buf, nil)), Next: failing{stderrors.New("read udp: i/o timeout")}}
	ask(h)
	if out := buf.String(); !strings.Contains(out, "SERVFAIL") || !strings.Contains(out, "www.example.org.") ||
		!strings.Contains(out, "i/o timeout") {
		t.Errorf("logged %q", out)
	}
}

func TestConsolidateCountsMatchingErrorsOncePerPeriod(t *testing.T) {
	var buf syncBuffer
	h := &Handler{
		Consolidate: []config.Consolidate{{Period: 50 * time.Millisecond, Regexp: regexp.MustCompile("timeout$"), Level: "warning"}},
		Log:         slog.New(slog.NewTextHandler(&buf, nil)),
		Next:        failing{stderrors.New("read udp: i/o timeout")},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	for range 3 {
		ask(h)
	}
	if strings.Contains(buf.String(), "i/o timeout") {
		t.Errorf("a consolidated error was logged on its own: %q", buf.String())
	}
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(buf.String(), "3 errors like 'timeout$' occurred in last 50ms") {
		if time.Now().After(deadline) {
			t.Fatalf("no consolidated report: %q", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("report not at the rule's level: %q", buf.String())
	}
	cancel()
	<-done
}
