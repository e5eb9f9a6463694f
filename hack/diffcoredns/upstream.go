package main

import (
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// upstream is the authoritative server both servers forward to: it answers
// from the case's upstream records, NXDOMAIN (with the SOA of the closest
// enclosing zone it has, if any) for names it does not have, and NODATA for
// names it has without the type asked.
type upstream struct {
	Addr  string // 127.0.0.1:PORT, UDP and TCP
	rrs   map[string][]dns.RR
	udp   *dns.Server
	tcp   *dns.Server
	mu    sync.Mutex
	count map[string]int // queries seen, by "name type", lower case
}

func startUpstream(lines []string) (*upstream, error) {
	u := &upstream{rrs: map[string][]dns.RR{}, count: map[string]int{}}
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			return nil, fmt.Errorf("upstream: %q: %v", l, err)
		}
		if rr == nil {
			continue
		}
		name := strings.ToLower(rr.Header().Name)
		u.rrs[name] = append(u.rrs[name], rr)
	}
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		pc, err = net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			break
		}
		ln.Close()
		ln = nil
	}
	if ln == nil {
		return nil, fmt.Errorf("upstream: no free port for both UDP and TCP")
	}
	u.Addr = ln.Addr().String()
	u.udp = &dns.Server{PacketConn: pc, Handler: u}
	u.tcp = &dns.Server{Listener: ln, Handler: u}
	for _, s := range []*dns.Server{u.udp, u.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
	}
	return u, nil
}

func (u *upstream) Close() {
	u.udp.Shutdown()
	u.tcp.Shutdown()
}

func (u *upstream) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
	}
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	u.mu.Lock()
	u.count[name+" "+dns.TypeToString[q.Qtype]]++
	u.mu.Unlock()

	rrs, exists := u.rrs[name]
	if !exists {
		// An empty non-terminal exists too.
		for n := range u.rrs {
			if dns.IsSubDomain(name, n) {
				exists = true
				break
			}
		}
	}
	for _, rr := range rrs {
		t := rr.Header().Rrtype
		if t == q.Qtype || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	// A CNAME answers every type, followed once inside our data.
	if len(m.Answer) == 0 {
		for _, rr := range rrs {
			if c, ok := rr.(*dns.CNAME); ok {
				m.Answer = append(m.Answer, dns.Copy(rr))
				for _, t := range u.rrs[strings.ToLower(c.Target)] {
					if t.Header().Rrtype == q.Qtype {
						m.Answer = append(m.Answer, dns.Copy(t))
					}
				}
			}
		}
	}
	if len(m.Answer) == 0 {
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		if soa := u.soaFor(name); soa != nil {
			m.Ns = append(m.Ns, soa)
		}
	}
	w.WriteMsg(m)
}

// soaFor is the SOA of the closest enclosing zone, or nil.
func (u *upstream) soaFor(name string) dns.RR {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		for _, rr := range u.rrs[name[off:]] {
			if rr.Header().Rrtype == dns.TypeSOA {
				return dns.Copy(rr)
			}
		}
	}
	for _, rr := range u.rrs["."] {
		if rr.Header().Rrtype == dns.TypeSOA {
			return dns.Copy(rr)
		}
	}
	return nil
}

// Seen is how many times the upstream was asked name (lower case) type.
func (u *upstream) Seen(name string, qtype uint16) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.count[strings.ToLower(name)+" "+dns.TypeToString[qtype]]
}
