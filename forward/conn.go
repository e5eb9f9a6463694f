package forward

import (
	"context"
	crand "crypto/rand"
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

// roundTrip sends the query wire (packed, its ID to be set) for q to u from
// a fresh socket, so a random source port, with a random ID, and returns
// the first reply that matches the query in ID and question. It gives up
// when ctx ends.
func roundTrip(ctx context.Context, u *upstream, tcp bool, wire []byte, q *dns.Question) (*dns.Msg, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp

	var conn net.Conn
	var err error
	if tcp {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", u.addr)
	} else {
		conn, err = net.DialUDP("udp", nil, u.udp)
	}
	if err != nil {
		return nil, noReply(ctx, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	defer stop()

	off := 0
	if tcp {
		off = 2
		binary.BigEndian.PutUint16(buf, uint16(len(wire)))
	}
	copy(buf[off:], wire)
	crand.Read(buf[off : off+2])
	id := binary.BigEndian.Uint16(buf[off:])
	if _, err := conn.Write(buf[:off+len(wire)]); err != nil {
		return nil, noReply(ctx, err)
	}

	for {
		var n int
		if tcp {
			if _, err := io.ReadFull(conn, buf[:2]); err != nil {
				return nil, noReply(ctx, err)
			}
			n = int(binary.BigEndian.Uint16(buf))
			if _, err := io.ReadFull(conn, buf[:n]); err != nil {
				return nil, noReply(ctx, err)
			}
		} else if n, err = conn.Read(buf); err != nil {
			return nil, noReply(ctx, err)
		}
		m, err := parseReply(buf[:n], id, q)
		switch {
		case err == nil:
			return m, nil
		case errors.Is(err, errMismatch) || !tcp:
			// Not ours, or garbage, perhaps forged: keep listening.
		default:
			// The stream is ours but broken.
			return nil, err
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
