package resolver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// maxTCPInFlight is how many queries of one TCP connection are answered at
// once. Past it the connection is not read until an answer goes out: a
// client cannot pile up goroutines by pipelining.
const maxTCPInFlight = 128

// tcpServer serves DNS over TCP (RFC 7766). Each connection's queries are
// read in a loop and each is answered in its own goroutine, its reply
// written as soon as it is ready (§6.2.1.1): a cluster name pipelined
// behind a slow forwarded one is not held up by it. miekg/dns's server
// answers one query of a connection after the other, hence this loop.
type tcpServer struct {
	ln      net.Listener
	handler func() dns.Handler
	// readTimeout bounds the first query and the rest of a query once its
	// first byte came, and each write; idleTimeout the wait for a further
	// query while no answer is in flight.
	readTimeout, idleTimeout time.Duration

	mu      sync.Mutex
	closing bool
	conns   map[*tcpConn]struct{}
	quit    chan struct{} // closed by shutdown: stop reading
	wg      sync.WaitGroup
}

func newTCPServer(ln net.Listener, handler func() dns.Handler, read, idle time.Duration) *tcpServer {
	return &tcpServer{ln: ln, handler: handler, readTimeout: read, idleTimeout: idle,
		conns: make(map[*tcpConn]struct{}), quit: make(chan struct{})}
}

// serve accepts connections until shutdown; any other accept error ends
// it and is returned.
func (s *tcpServer) serve() error {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if !transientAcceptError(err) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors or memory, or a connection reset
			// before it was accepted: wait a little, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc := &tcpConn{srv: s, conn: c, slots: make(chan struct{}, maxTCPInFlight)}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[tc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go tc.serve()
	}
}

func transientAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *tcpServer) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// stopReading closes the listener and stops every connection's reader;
// answers in flight still go out, and each connection closes after its
// last. wait tells when all have.
func (s *tcpServer) stopReading() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	close(s.quit)
	conns := make([]*tcpConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.stopReading()
	}
	return err
}

// wait waits for every connection to close.
func (s *tcpServer) wait() { s.wg.Wait() }

// closeAll closes every connection at once, answers in flight or not.
func (s *tcpServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.conn.Close()
	}
}

// tcpConn is one client connection.
type tcpConn struct {
	srv  *tcpServer
	conn net.Conn
	// slots holds a token per query in flight.
	slots    chan struct{}
	inflight sync.WaitGroup

	wmu sync.Mutex // one reply written at a time

	// mu guards the read deadline's state: the reader and the last
	// answer out both set it.
	mu       sync.Mutex
	pending  int  // queries in flight
	idleWait bool // the reader waits for the first byte of a query
	stopped  bool // shutdown: the read deadline stays in the past
}

// serve reads queries until the client closes, a timeout, or shutdown,
// then waits for the answers in flight and closes the connection.
func (c *tcpConn) serve() {
	defer func() {
		c.inflight.Wait()
		c.conn.Close()
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
		c.srv.wg.Done()
	}()
	r := bufio.NewReader(c.conn)
	wait := c.srv.readTimeout // for the first query
	for {
		select {
		case c.slots <- struct{}{}:
		case <-c.srv.quit:
			return
		}
		q, err := c.readQuery(r, wait)
		if err != nil {
			<-c.slots
			return
		}
		wait = c.srv.idleTimeout
		c.mu.Lock()
		c.pending++
		c.mu.Unlock()
		c.inflight.Add(1)
		go c.answer(q)
	}
}

// readQuery reads one length-prefixed query. The wait for its first byte
// is bounded by wait while no answer is in flight, and not at all while
// one is (the last answer out starts the idle timer); the rest of the
// query must come within the read timeout.
func (c *tcpConn) readQuery(r *bufio.Reader, wait time.Duration) ([]byte, error) {
	if r.Buffered() == 0 {
		c.mu.Lock()
		c.idleWait = true
		if !c.stopped {
			if c.pending == 0 {
				c.conn.SetReadDeadline(time.Now().Add(wait))
			} else {
				c.conn.SetReadDeadline(time.Time{})
			}
		}
		c.mu.Unlock()
		_, err := r.Peek(1)
		c.mu.Lock()
		c.idleWait = false
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	if !c.stopped {
		c.conn.SetReadDeadline(time.Now().Add(c.srv.readTimeout))
	}
	c.mu.Unlock()
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	q := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, q); err != nil {
		return nil, err
	}
	return q, nil
}

func (c *tcpConn) answer(q []byte) {
	defer func() {
		c.mu.Lock()
		c.pending--
		if c.pending == 0 && c.idleWait && !c.stopped {
			c.conn.SetReadDeadline(time.Now().Add(c.srv.idleTimeout))
		}
		c.mu.Unlock()
		<-c.slots
		c.inflight.Done()
	}()
	serveGeneral(c.srv.handler(), &tcpWriter{c: c}, q)
}

// stopReading makes the reader's read fail at once, now and from now on.
func (c *tcpConn) stopReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.conn.SetReadDeadline(time.Unix(1, 0))
}

// write writes one reply with its length prefix. A write that fails may
// have sent part of the reply, after which the stream cannot be read:
// the connection is closed.
func (c *tcpConn) write(b []byte) (int, error) {
	if len(b) > dns.MaxMsgSize {
		return 0, fmt.Errorf("a %d-byte reply does not fit a TCP message", len(b))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(c.srv.readTimeout))
	// One write, one segment: the prefix alone would go out as a packet
	// of its own (Go sets TCP_NODELAY).
	out := make([]byte, 2, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	if _, err := c.conn.Write(append(out, b...)); err != nil {
		c.conn.Close()
		return 0, err
	}
	return len(b), nil
}

// tcpWriter is the dns.ResponseWriter of one TCP query.
type tcpWriter struct{ c *tcpConn }

func (w *tcpWriter) LocalAddr() net.Addr  { return w.c.conn.LocalAddr() }
func (w *tcpWriter) RemoteAddr() net.Addr { return w.c.conn.RemoteAddr() }

func (w *tcpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *tcpWriter) Write(b []byte) (int, error) { return w.c.write(b) }

// Close closes the connection, as miekg/dns's does: the reader stops.
func (w *tcpWriter) Close() error        { return w.c.conn.Close() }
func (w *tcpWriter) Network() string     { return "tcp" }
func (w *tcpWriter) TsigStatus() error   { return nil }
func (w *tcpWriter) TsigTimersOnly(bool) {}
func (w *tcpWriter) Hijack()             {}
