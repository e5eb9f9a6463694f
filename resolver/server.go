package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Server serves one Handler over UDP and TCP on the same address. The
// handler can be swapped while serving, which is how a configuration reload
// takes effect without dropping a query.
type Server struct {
	udp     *udpServer
	tcp     *dns.Server
	addr    string
	handler atomic.Pointer[dns.Handler]
}

// ServeDNS implements dns.Handler with the current handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) { (*s.handler.Load()).ServeDNS(w, r) }

// SetHandler makes h answer the queries from now on.
func (s *Server) SetHandler(h dns.Handler) { s.handler.Store(&h) }

// Defaults of Options.
const (
	DefaultMaxTCPConns    = 1000
	DefaultTCPReadTimeout = 5 * time.Second
	DefaultTCPIdleTimeout = 10 * time.Second
)

// Options bounds what clients can hold of a Server; zero fields take the
// defaults.
type Options struct {
	// MaxTCPConns caps the TCP connections open at once. A connection over
	// the cap is closed as soon as it is accepted, while those already open
	// keep being served: idle connections cannot starve the server of file
	// descriptors and goroutines, only of TCP service until they time out.
	MaxTCPConns int
	// TCPReadTimeout bounds reading the first query of a connection, its
	// length prefix included, and writing each reply; TCPIdleTimeout bounds
	// the wait for (and the reading of) each further query. A client that
	// sends nothing, or trickles a query, is disconnected when they expire.
	TCPReadTimeout, TCPIdleTimeout time.Duration
}

// Listen binds UDP and TCP on addr (host:port) with the default Options.
// With port 0 the system picks a port free for both, which tests use.
func Listen(addr string, h dns.Handler) (*Server, error) {
	return ListenWith(addr, h, Options{})
}

// ListenWith is Listen with options.
func ListenWith(addr string, h dns.Handler, o Options) (*Server, error) {
	if o.MaxTCPConns <= 0 {
		o.MaxTCPConns = DefaultMaxTCPConns
	}
	if o.TCPReadTimeout <= 0 {
		o.TCPReadTimeout = DefaultTCPReadTimeout
	}
	if o.TCPIdleTimeout <= 0 {
		o.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	pc, l, err := bindBoth(addr)
	if err != nil {
		return nil, err
	}
	s := &Server{addr: pc.LocalAddr().String()}
	s.SetHandler(h)
	// The default receive buffer (208 KiB, a few hundred queries) overflows
	// in the few milliseconds a busy node keeps the readers off the CPU,
	// and every overflow is a query lost to a client that waits out its
	// timeout (5 s for glibc). The kernel caps this at net.core.rmem_max.
	_ = pc.(*net.UDPConn).SetReadBuffer(UDPReadBuffer)
	s.udp = newUDPServer(pc.(*net.UDPConn), func() dns.Handler { return *s.handler.Load() })
	s.tcp = &dns.Server{
		Listener: newCappedListener(l, o.MaxTCPConns), Handler: s,
		ReadTimeout: o.TCPReadTimeout, WriteTimeout: o.TCPReadTimeout,
		IdleTimeout:    func() time.Duration { return o.TCPIdleTimeout },
		MsgAcceptFunc:  acceptQueries,
		DecorateReader: headersOfUnparseable,
	}
	return s, nil
}

// UDPReadBuffer is the receive buffer asked for the UDP socket: about
// 40 ms of queries at 100k a second.
const UDPReadBuffer = 4 << 20

// cappedListener accepts at most cap connections open at once. Over the
// cap it accepts and closes at once rather than leaving connections in the
// backlog: a client learns straight away to try elsewhere, and the
// backlog does not fill with connections nobody will serve.
type cappedListener struct {
	net.Listener
	slots chan struct{}
}

func newCappedListener(l net.Listener, n int) *cappedListener {
	return &cappedListener{Listener: l, slots: make(chan struct{}, n)}
}

func (l *cappedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &cappedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			c.Close()
		}
	}
}

// cappedConn gives its slot back when closed, once however often Close is
// called.
type cappedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func bindBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %q: %w", addr, err)
	}
	// With port 0 the UDP port may be taken for TCP: try a few times.
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		_, p, _ := net.SplitHostPort(pc.LocalAddr().String())
		l, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || attempt == 10 {
			return nil, nil, err
		}
	}
}

// Addr returns the bound address, host:port.
func (s *Server) Addr() string { return s.addr }

// Start serves in the background until Shutdown. A listener that fails
// for another reason than Shutdown reports on errc.
func (s *Server) Start(errc chan<- error) {
	udpErrc := make(chan error, 1)
	s.udp.serve(udpErrc)
	go func() {
		if err, ok := <-udpErrc; ok {
			errc <- fmt.Errorf("dns server %s (udp): %w", s.addr, err)
		}
	}()
	// Return once TCP serves, so that a Shutdown right after Start finds it
	// started (miekg/dns refuses to shut down a server not yet started).
	started := make(chan struct{})
	s.tcp.NotifyStartedFunc = func() { close(started) }
	failed := make(chan struct{})
	go func() {
		if err := s.tcp.ActivateAndServe(); err != nil {
			close(failed)
			errc <- fmt.Errorf("dns server %s: %w", s.addr, err)
		}
	}()
	select {
	case <-started:
	case <-failed:
	}
}

// Shutdown stops both listeners and waits for in-flight queries, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	// Stop reading UDP, let the queries in flight answer through the
	// still open socket, and only then close it: closing first would lose
	// every forwarded answer still on its way.
	s.udp.stopReading()
	done := make(chan struct{})
	go func() {
		s.udp.inflight.Wait()
		close(done)
	}()
	terr := s.tcp.ShutdownContext(ctx)
	var cerr error
	select {
	case <-done:
	case <-ctx.Done():
		cerr = ctx.Err()
	}
	return errors.Join(s.udp.conn.Close(), terr, cerr)
}
