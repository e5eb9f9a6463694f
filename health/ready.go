package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Check is one condition of readiness.
type Check struct {
	Name  string
	Ready func() bool
}

// Ready answers GET /ready: 200 when every check passes, 503 naming the
// ones that do not.
type Ready struct {
	// Path is where it answers; "/ready" when empty.
	Path     string
	checks   atomic.Pointer[[]Check]
	stopping atomic.Bool
}

// NewReady returns a Ready over checks.
func NewReady(checks ...Check) *Ready {
	r := &Ready{}
	r.SetChecks(checks...)
	return r
}

// SetChecks replaces the checks, as a configuration reload does.
func (r *Ready) SetChecks(checks ...Check) { r.checks.Store(&checks) }

// Stopping makes /ready fail from now on, so that load balancers stop
// sending queries before the server goes away.
func (r *Ready) Stopping() { r.stopping.Store(true) }

// ServeHTTP implements http.Handler.
func (r *Ready) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !probe(w, req, cmp.Or(r.Path, "/ready")) {
		return
	}
	var waiting []string
	if r.stopping.Load() {
		waiting = append(waiting, "shutting down")
	}
	for _, c := range *r.checks.Load() {
		if !c.Ready() {
			waiting = append(waiting, c.Name)
		}
	}
	if len(waiting) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(waiting, ", "))
		return
	}
	fmt.Fprintln(w, "OK")
}

// Server is an HTTP endpoint (probes, metrics) listening on its own
// address. Its handler can be swapped while serving, for a reload.
type Server struct {
	srv     *http.Server
	ln      net.Listener
	handler atomic.Pointer[http.Handler]
}

// ServeHTTP implements http.Handler with the current handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.handler.Load()).ServeHTTP(w, r)
}

// SetHandler makes h answer from now on.
func (s *Server) SetHandler(h http.Handler) { s.handler.Store(&h) }

// maxHeaderBytes bounds the request headers of probe and metrics
// endpoints (net/http's default is 1 MiB).
const maxHeaderBytes = 16 << 10

// Listen binds addr for h; Serve starts answering.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln}
	s.SetHandler(h)
	s.srv = &http.Server{
		Handler: s,
		// A client trickling its headers or a body is cut off by the read
		// timeouts rather than holding a connection; probes and scrapes
		// send a few small headers, so 16 KiB of them is plenty.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers until Shutdown; a failure is sent to errc.
func (s *Server) Serve(errc chan<- error) {
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http %s: %w", s.Addr(), err)
		}
	}()
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
