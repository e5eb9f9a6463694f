package hosts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "hosts"

// Handler answers from a hosts file and the Corefile's entries.
type Handler struct {
	cfg    config.Hosts
	zones  plugin.Zones
	fall   plugin.Zones
	log    *slog.Logger
	next   plugin.Handler
	inline *table

	// version moves when the file's entries change, so that a reply the
	// fast path keeps for a name hosts handed on is made again.
	version plugin.Version

	mu   sync.RWMutex
	file *table // the file as last read; kept when it goes away
	// mtime and size are the file's when it was last read; only Run and
	// New touch them.
	mtime time.Time
	size  int64
}

// New returns the handler of cfg in front of next, with the file read
// once. A file that does not exist is logged and waited for; one that
// cannot be read for another reason is an error.
func New(cfg *config.Hosts, log *slog.Logger, next plugin.Handler) (*Handler, error) {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{cfg: *cfg, zones: plugin.Zones(cfg.Zones), fall: plugin.Zones(cfg.Fallthrough), log: log, next: next, file: newTable()}
	h.inline = parse(strings.NewReader(strings.Join(cfg.Inline, "\n")), h.zones, !cfg.NoReverse)
	fi, err := os.Stat(cfg.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Warn("hosts file does not exist: serving the Corefile's entries until it does", "file", cfg.Path)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("line %d: hosts file %s cannot be read: %w", cfg.Line, cfg.Path, err)
	case fi.IsDir():
		log.Warn("hosts file is a directory", "file", cfg.Path)
	}
	h.read()
	return h, nil
}

// Name implements plugin.Handler.
func (h *Handler) Name() string { return Name }

// Run re-reads the file every reload period while it changes, until ctx
// ends; with a period of 0 it only waits.
func (h *Handler) Run(ctx context.Context) {
	if h.cfg.Reload <= 0 {
		return
	}
	t := time.NewTicker(h.cfg.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.read()
		}
	}
}

// read parses the file again when its modification time or size changed
// since the last read. A file that cannot be opened keeps the last
// entries read from it, as in CoreDNS.
func (h *Handler) read() {
	f, err := os.Open(h.cfg.Path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() || fi.ModTime().Equal(h.mtime) && fi.Size() == h.size {
		return
	}
	t := parse(f, h.zones, !h.cfg.NoReverse)
	h.mu.Lock()
	h.file, h.mtime, h.size = t, fi.ModTime(), fi.Size()
	h.mu.Unlock()
	h.version.Bump()
	h.log.Debug("hosts file read", "file", h.cfg.Path, "entries", t.entries()+h.inline.entries())
}

// addrs returns name's addresses of one family, the file's then the
// Corefile's.
func (h *Handler) addrs(name string, v4 bool) []net.IP {
	h.mu.RLock()
	file := h.file
	h.mu.RUnlock()
	var out []net.IP
	for _, t := range []*table{file, h.inline} {
		if v4 {
			out = append(out, lookup(t.name4, t.wild4, name)...)
		} else {
			out = append(out, lookup(t.name6, t.wild6, name)...)
		}
	}
	return out
}

// names returns the names of addr (canonical text form), the file's then
// the Corefile's.
func (h *Handler) names(addr string) []string {
	if addr == "" {
		return nil
	}
	h.mu.RLock()
	file := h.file
	h.mu.RUnlock()
	return append(append([]string(nil), file.addr[addr]...), h.inline.addr[addr]...)
}

// ServeDNS implements plugin.Handler. As CoreDNS's hosts: a name outside
// the zones goes on (a PTR query is answered whatever its zone); a PTR of an
// address without names goes on; a name with addresses gets them, or an
// empty NOERROR (NODATA) for another type; a name without any goes on when
// it falls through and gets SERVFAIL otherwise (there is no SOA to make an
// NXDOMAIN with). Answers are authoritative.
func (h *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	st.DependOn(&h.version)
	if h.zones.Matches(st.Name) == "" && st.Type != dns.TypePTR {
		return plugin.Next(ctx, h.next, st)
	}
	var answer []dns.RR
	switch st.Type {
	case dns.TypePTR:
		names := h.names(addressOf(st.Name))
		if len(names) == 0 {
			return plugin.Next(ctx, h.next, st)
		}
		for _, n := range names {
			answer = append(answer, &dns.PTR{Hdr: h.header(st.Name, dns.TypePTR), Ptr: n})
		}
	case dns.TypeA:
		for _, ip := range h.addrs(st.Name, true) {
			answer = append(answer, &dns.A{Hdr: h.header(st.Name, dns.TypeA), A: ip})
		}
	case dns.TypeAAAA:
		for _, ip := range h.addrs(st.Name, false) {
			answer = append(answer, &dns.AAAA{Hdr: h.header(st.Name, dns.TypeAAAA), AAAA: ip})
		}
	default:
		if h.cfg.FallthroughUnsupported && h.fall.Matches(st.Name) != "" {
			return plugin.Next(ctx, h.next, st)
		}
	}
	if len(answer) == 0 && len(h.addrs(st.Name, true)) == 0 && len(h.addrs(st.Name, false)) == 0 {
		if h.fall.Matches(st.Name) != "" {
			return plugin.Next(ctx, h.next, st)
		}
		return st.Error(Name, dns.RcodeServerFailure)
	}
	m := st.Reply()
	m.Authoritative = true
	m.Answer = answer
	st.By = Name
	return m
}

func (h *Handler) header(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: h.cfg.TTL}
}

var (
	_ plugin.Handler = (*Handler)(nil)
	_ plugin.Runner  = (*Handler)(nil)
)
