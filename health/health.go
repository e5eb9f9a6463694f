package health

import (
	"fmt"
	"net/http"
)

// Alive answers GET /health with 200 while the process serves: the
// livenessProbe. It stays 200 through lameduck, when only /ready fails.
type Alive struct{}

// ServeHTTP implements http.Handler.
func (Alive) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/health" {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "OK")
}
