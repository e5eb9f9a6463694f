package resolver

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpServer reads queries from one socket in a few goroutines (one per
// CPU, up to 4). A query the fast path answers is answered in the reading
// goroutine, without allocating; any other gets its own goroutine on the
// general path, as with miekg/dns's server, so a slow upstream never holds
// up the reads.
type udpServer struct {
	conn    *net.UDPConn
	handler func() dns.Handler
	// wildcard: bound to an unspecified address, so replies must name the
	// address each query came to (IP_PKTINFO), as miekg/dns does.
	wildcard bool
	closing  atomic.Bool
	readers  sync.WaitGroup
	inflight sync.WaitGroup
}

// udpMaxQuery is the largest query read (miekg/dns reads 512 bytes): room
// for EDNS options. udpFastReply is the largest reply the fast path writes;
// a larger one goes out through the general path. Each reader holds a batch
// of both.
const (
	udpMaxQuery  = 4096
	udpFastReply = 4096
)

func newUDPServer(conn *net.UDPConn, handler func() dns.Handler) *udpServer {
	s := &udpServer{conn: conn, handler: handler}
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.IsUnspecified() {
		s.wildcard = true
		// As miekg/dns's setUDPSocketOptions: either family may fail.
		err6 := ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
		err4 := ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		if err4 != nil && err6 != nil {
			s.wildcard = false
		}
	}
	return s
}

// serve starts the readers; a read error other than the close is sent to
// errc.
func (s *udpServer) serve(errc chan<- error) {
	n := min(runtime.GOMAXPROCS(0), 4)
	for range n {
		s.readers.Add(1)
		go func() {
			defer s.readers.Done()
			if err := s.read(); err != nil && !s.closing.Load() {
				select {
				case errc <- err:
				default: // another reader reported already
				}
			}
		}()
	}
}

// FastHandler is a dns.Handler with a fast path for UDP queries (Handler
// has one); the server tries it before the general path.
type FastHandler interface {
	ServeFast(req, out []byte, v6 bool) (int, bool)
}

// batchSize is how many datagrams one recvmmsg/sendmmsg moves: under load
// the system call cost is shared by the batch.
const batchSize = 32

// batchConn is the part of ipv4.PacketConn and ipv6.PacketConn read uses.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func (s *udpServer) batchConn() batchConn {
	if a, ok := s.conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		return ipv4.NewPacketConn(s.conn)
	}
	return ipv6.NewPacketConn(s.conn)
}

func (s *udpServer) read() error {
	bc := s.batchConn()
	in := make([]ipv4.Message, batchSize)
	out := make([]ipv4.Message, batchSize)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, udpMaxQuery)}
		out[i].Buffers = [][]byte{make([]byte, udpFastReply)}
		if s.wildcard {
			in[i].OOB = make([]byte, 128)
		}
	}
	oobs := make(map[netip.Addr][]byte)
	replies := make([][]byte, batchSize) // each out buffer, full length
	for i := range out {
		replies[i] = out[i].Buffers[0]
	}
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		h := s.handler()
		fh, _ := h.(FastHandler)
		rl := limiterOf(h)
		nout := 0
		for i := range n {
			m := &in[i]
			req := m.Buffers[0][:m.N]
			from, _ := m.Addr.(*net.UDPAddr)
			if from == nil {
				continue
			}
			var oob []byte
			if s.wildcard {
				oob = replyOOB(m.OOB[:m.NN], oobs)
			}
			if rl != nil {
				switch rl.decide(from.IP) {
				case dropped:
					rl.count(dropped)
					continue
				case slipped:
					k := slipReply(req, replies[nout])
					if k == 0 {
						rl.count(dropped) // nothing worth a reply
						continue
					}
					rl.count(slipped)
					o := &out[nout]
					o.Buffers[0] = replies[nout][:k]
					o.Addr, o.OOB = from, oob
					nout++
					continue
				}
			}
			if fh != nil {
				if k, ok := fh.ServeFast(req, replies[nout], from.IP.To4() == nil); ok {
					o := &out[nout]
					o.Buffers[0] = replies[nout][:k]
					o.Addr, o.OOB = from, oob
					nout++
					continue
				}
			}
			q := make([]byte, len(req))
			copy(q, req)
			w := &udpWriter{conn: s.conn, to: from, oob: oob}
			s.inflight.Add(1)
			go func() {
				defer s.inflight.Done()
				serveGeneral(h, w, q)
			}()
		}
		for sent := 0; sent < nout; {
			k, err := bc.WriteBatch(out[sent:nout], 0)
			if err != nil {
				// A reply that cannot be sent (the client went away) is
				// lost, as with a single write; go on with the rest.
				k = max(k, 1)
			}
			sent += k
		}
	}
}

// replyOOB returns the control message that makes a reply leave from the
// address the query (with control message oob) came to. They are kept per
// address: a server has few.
func replyOOB(oob []byte, cache map[netip.Addr][]byte) []byte {
	dst, ok := queryDst(oob)
	if !ok {
		return nil
	}
	if b, ok := cache[dst]; ok {
		return b
	}
	var b []byte
	if dst.Is4() || dst.Is4In6() {
		b = (&ipv4.ControlMessage{Src: dst.Unmap().AsSlice()}).Marshal()
	} else {
		b = (&ipv6.ControlMessage{Src: dst.AsSlice()}).Marshal()
	}
	if len(cache) < 64 {
		cache[dst] = b
	}
	return b
}

// stopReading ends the readers but leaves the socket open, so that the
// queries the general path is still answering (forwarded ones wait on an
// upstream) can send their replies: Shutdown closes it after them.
func (s *udpServer) stopReading() {
	s.closing.Store(true)
	_ = s.conn.SetReadDeadline(time.Unix(1, 0)) // in the past: reads fail at once
	s.readers.Wait()
}

// serveGeneral answers one query on the general path. A header that does
// not parse, or a response, gets no reply (any reply could amplify). Every
// other message goes to the handler, which answers FORMERR, NOTIMP or
// BADVERS for what it does not take (with an OPT when the query had one)
// and counts the reply: a body that does not parse is handed on as its
// header alone, which gets FORMERR (NOTIMP for an opcode other than
// QUERY), as miekg/dns's server answers it.
func serveGeneral(h dns.Handler, w dns.ResponseWriter, m []byte) {
	if len(m) < 12 || m[2]&0x80 != 0 {
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(m); err != nil {
		req = headerOnly(m)
	}
	h.ServeDNS(w, req)
}

// headerOnly is the message of the header of m (at least 12 bytes) with
// its sections left out: the ID, the opcode and the RD and CD bits.
func headerOnly(m []byte) *dns.Msg {
	req := new(dns.Msg)
	req.Id = uint16(m[0])<<8 | uint16(m[1])
	req.Opcode = int(m[2]>>3) & 0xF
	req.RecursionDesired = m[2]&0x01 != 0
	req.CheckingDisabled = m[3]&0x10 != 0
	return req
}

// udpWriter is the dns.ResponseWriter of one UDP query.
type udpWriter struct {
	conn *net.UDPConn
	to   *net.UDPAddr
	oob  []byte // the reply's source address, for a wildcard socket
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return w.to }

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) Write(b []byte) (int, error) {
	n, _, err := w.conn.WriteMsgUDP(b, w.oob, w.to)
	return n, err
}

func (w *udpWriter) Network() string     { return "udp" }
func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
