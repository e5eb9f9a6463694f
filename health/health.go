package health

import (
	"cmp"
	"fmt"
	"net/http"
)

// Alive answers GET /health with 200 while the process serves: the
// livenessProbe. It stays 200 through lameduck, when only /ready fails.
type Alive struct {
	// Path is where it answers; "/health" when empty (the webhook uses
	// Kubernetes' "/healthz").
	Path string
}

// ServeHTTP implements http.Handler.
func (a Alive) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !probe(w, req, cmp.Or(a.Path, "/health")) {
		return
	}
	fmt.Fprintln(w, "OK")
}

// probe answers what is not a GET or HEAD of path, and reports whether the
// request is one; it sets the content type of the answer to come.
func probe(w http.ResponseWriter, req *http.Request, path string) bool {
	if req.URL.Path != path {
		http.NotFound(w, req)
		return false
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	return true
}
