package health

import (
	"net/http"
	"strings"
	"testing"
)

func TestServerRefusesOversizedHeadersAndBoundsBodies(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Alive{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	s.Serve(errc)
	t.Cleanup(func() { s.Shutdown(t.Context()) })

	get := func(header string) int {
		req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/health", nil)
		if header != "" {
			req.Header.Set("X-Padding", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(strings.Repeat("x", 1024)); code != http.StatusOK {
		t.Fatalf("a probe with 1 KiB of headers: %d", code)
	}
	if code := get(strings.Repeat("x", 64<<10)); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: %d, want 431", code)
	}
	// A body trickled slower than anything can read is cut off by the
	// whole-request timeout; ReadHeaderTimeout alone would not.
	if s.srv.ReadTimeout <= 0 || s.srv.ReadHeaderTimeout <= 0 {
		t.Fatalf("read timeouts %s (whole request) and %s (headers), want both set", s.srv.ReadTimeout, s.srv.ReadHeaderTimeout)
	}
}
