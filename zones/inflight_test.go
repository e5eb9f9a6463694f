package zones

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type slowTransport struct{ now, peak atomic.Int32 }

func (s *slowTransport) RoundTrip(*http.Request) (*http.Response, error) {
	n := s.now.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	time.Sleep(5 * time.Millisecond)
	return &http.Response{StatusCode: 200, Body: &countedBody{Reader: strings.NewReader("x"), done: &s.now}}, nil
}

type countedBody struct {
	io.Reader
	done *atomic.Int32
}

func (b *countedBody) Close() error { b.done.Add(-1); return nil }

func TestMaxInflightCapsRequestsUntilBodiesClose(t *testing.T) {
	next := &slowTransport{}
	l := newInflightLimit(next, 2)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://x/", nil)
			resp, err := l.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond)
			resp.Body.Close()
		})
	}
	wg.Wait()
	if p := next.peak.Load(); p > 2 {
		t.Errorf("%d requests in flight at once, want at most 2", p)
	}
}
