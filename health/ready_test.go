package health

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestReadyFollowsItsChecks(t *testing.T) {
	var synced atomic.Bool
	r := NewReady(Check{Name: "zone cluster.local.", Ready: synced.Load})
	get := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("GET", "/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "zone cluster.local.") {
		t.Fatalf("before sync: %d %q, want 503 naming the zone", code, body)
	}
	synced.Store(true)
	if code, _ := get("GET", "/ready"); code != http.StatusOK {
		t.Fatalf("after sync: %d, want 200", code)
	}
	if code, _ := get("POST", "/ready"); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", code)
	}
	if code, _ := get("GET", "/other"); code != http.StatusNotFound {
		t.Fatalf("other path: %d, want 404", code)
	}
	r.Stopping()
	if code, body := get("GET", "/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Fatalf("stopping: %d %q, want 503", code, body)
	}
}

func TestAliveAnswersHealth(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/health", http.StatusOK},
		{"HEAD", "/health", http.StatusOK},
		{"POST", "/health", http.StatusMethodNotAllowed},
		{"GET", "/ready", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		Alive{}.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
	}
}
