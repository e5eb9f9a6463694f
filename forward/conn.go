package forward

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// bufPool holds buffers for a query and its reply: a TCP length prefix and
// the largest DNS message, since an upstream may send more than it was
// offered.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 2+dns.MaxMsgSize)
	return &b
}}

// errMismatch marks a datagram that is not the reply to our query.
var errMismatch = errors.New("reply does not match the query")

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// transport is how one exchange reaches an upstream.
type transport int

const (
	overUDP transport = iota
	overTCP
	overTLS
)

func (t transport) String() string { return [...]string{"udp", "tcp", "tls"}[t] }

// roundTrip sends the query wire (packed, its ID to be set) for q to u over
// t, with a random ID, and returns the first reply that matches the query
// in ID and question. A UDP query goes from a fresh socket, so a random
// source port; a TCP or TLS query reuses an idle connection of u when there
// is one (dialling afresh once when the upstream closed it meanwhile), and
// the connection is kept for reuse after a complete exchange. It gives up
// when ctx ends.
func (f *Forwarder) roundTrip(ctx context.Context, u *upstream, t transport, wire []byte, q *dns.Question) (*dns.Msg, error) {
	if t == overUDP {
		conn, err := net.DialUDP("udp", f.localUDP, u.udp)
		if err != nil {
			return nil, noReply(ctx, err)
		}
		defer conn.Close()
		m, _, err := exchange(ctx, conn, false, wire, q)
		return m, err
	}
	kind := 0
	if t == overTLS {
		kind = 1
	}
	for fresh := false; ; fresh = true {
		var c *pconn
		if !fresh {
			c = u.idle.get(kind, f.limits)
		}
		if c == nil {
			fresh = true
			conn, err := f.dial(ctx, u, t)
			if err != nil {
				return nil, noReply(ctx, err)
			}
			now := time.Now()
			c = &pconn{Conn: conn, created: now, used: now}
		}
		m, state, err := exchange(ctx, c, true, wire, q)
		switch {
		case state == reusable:
			u.idle.put(kind, c, f.limits)
		default:
			c.Close()
		}
		if err != nil && state == unanswered && !fresh && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			continue // a kept connection the upstream had closed
		}
		return m, err
	}
}

// dial opens a TCP or TLS connection to u, the TLS handshake included.
func (f *Forwarder) dial(ctx context.Context, u *upstream, t transport) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: f.localTCP}
	if t == overTLS {
		td := &tls.Dialer{NetDialer: d, Config: u.tls}
		return td.DialContext(ctx, "tcp", u.addr)
	}
	return d.DialContext(ctx, "tcp", u.addr)
}

// connState is what an exchange left of its connection.
type connState int

const (
	// unanswered: nothing of a reply came, the connection is not reused.
	unanswered connState = iota
	// broken: the connection is not reused.
	broken
	// reusable: a complete exchange, the connection may carry another.
	reusable
)

// exchange writes the query wire for q on conn with a random ID and reads
// until the matching reply.
func exchange(ctx context.Context, conn net.Conn, stream bool, wire []byte, q *dns.Question) (*dns.Msg, connState, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp

	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	off := 0
	if stream {
		off = 2
		binary.BigEndian.PutUint16(buf, uint16(len(wire)))
	}
	copy(buf[off:], wire)
	crand.Read(buf[off : off+2])
	id := binary.BigEndian.Uint16(buf[off:])
	if _, err := conn.Write(buf[:off+len(wire)]); err != nil {
		return nil, unanswered, noReply(ctx, err)
	}

	state := unanswered
	for {
		var n int
		var err error
		if stream {
			if _, err := io.ReadFull(conn, buf[:2]); err != nil {
				return nil, state, noReply(ctx, err)
			}
			state = broken
			n = int(binary.BigEndian.Uint16(buf))
			if _, err := io.ReadFull(conn, buf[:n]); err != nil {
				return nil, broken, noReply(ctx, err)
			}
		} else if n, err = conn.Read(buf); err != nil {
			return nil, broken, noReply(ctx, err)
		}
		m, err := parseReply(buf[:n], id, q)
		switch {
		case err == nil:
			stopped = true
			if stream && stop() && conn.SetDeadline(time.Time{}) == nil {
				return m, reusable, nil
			}
			return m, broken, nil
		case errors.Is(err, errMismatch) || !stream:
			// Not ours, or garbage, perhaps forged: keep listening.
		default:
			// The stream is ours but broken.
			return nil, broken, err
		}
	}
}

// noReply describes a failed exchange, as a deadline or cancellation when
// ctx ended or the socket's deadline passed.
func noReply(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("no reply: %w", ctx.Err())
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("no reply: %w", context.DeadlineExceeded)
	}
	return err
}

// parseReply returns b as the reply to the query id for q, errMismatch when
// it is not that reply, or another error when it is malformed.
func parseReply(b []byte, id uint16, q *dns.Question) (*dns.Msg, error) {
	if len(b) < 12 || binary.BigEndian.Uint16(b) != id || b[2]&0x80 == 0 {
		return nil, errMismatch
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		if b[2]&0x02 != 0 {
			// Truncated, and cut short: all that counts is the TC bit.
			m = new(dns.Msg)
			m.Id, m.Response, m.Truncated = id, true, true
			return m, nil
		}
		return nil, fmt.Errorf("malformed reply: %w", err)
	}
	switch {
	case len(m.Question) == 0 && m.Rcode != dns.RcodeSuccess:
		// Some servers leave the question out of an error (FORMERR,
		// NOTIMP, REFUSED).
		return m, nil
	case len(m.Question) != 1:
		return nil, errMismatch
	}
	a := &m.Question[0]
	if a.Qtype != q.Qtype || a.Qclass != q.Qclass || !equalFoldASCII(a.Name, q.Name) {
		return nil, errMismatch
	}
	return m, nil
}
