// Package log is the log directive's handler: one line per query whose name
// and reply class match a rule, in CoreDNS's format language.
package log

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "log"

// Handler logs the queries its rules select.
type Handler struct {
	Rules []config.LogRule
	Log   *slog.Logger
	Next  plugin.Handler
}

// Name implements plugin.Handler.
func (l *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler.
func (l *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	if plugin.IsQuiet(ctx) {
		return plugin.Next(ctx, l.Next, st)
	}
	start := time.Now()
	r := st.Req // before a rewrite further on changes it
	m := plugin.Next(ctx, l.Next, st)
	class := Class(m.Rcode)
	for _, rule := range l.Rules {
		if !plugin.InZone(strings.ToLower(r.Question[0].Name), rule.Name) || !hasClass(rule.Classes, class) {
			continue
		}
		// Every such query must be logged: the fast path may not answer it.
		st.NoFast = true
		if st.Remote != nil { // not the server's own trial run for the fast path
			l.Log.Info(Format(rule.Format, st, r, m, time.Since(start)))
		}
		break
	}
	return m
}

// Class is a reply's class for the class option: success (NOERROR),
// denial (NXDOMAIN) or error (anything else).
func Class(rcode int) string {
	switch rcode {
	case dns.RcodeSuccess:
		return "success"
	case dns.RcodeNameError:
		return "denial"
	}
	return "error"
}

func hasClass(classes []string, c string) bool {
	for _, x := range classes {
		if x == "all" || x == c {
			return true
		}
	}
	return false
}

// Format fills CoreDNS's log placeholders from a query and its reply.
func Format(format string, st *plugin.State, r, m *dns.Msg, d time.Duration) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(format, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(format[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(format[:i])
		b.WriteString(placeholder(format[i+1:i+j], st, r, m, d))
		format = format[i+j+1:]
	}
	b.WriteString(format)
	return b.String()
}

func placeholder(p string, st *plugin.State, r, m *dns.Msg, d time.Duration) string {
	q := r.Question[0]
	host, port := "-", "-"
	if st.Remote != nil {
		if h, pt, err := net.SplitHostPort(st.Remote.String()); err == nil {
			host, port = h, pt
		}
	}
	switch p {
	case "remote":
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	case "port":
		return port
	case "type":
		return dns.TypeToString[q.Qtype]
	case "class":
		return dns.ClassToString[q.Qclass]
	case "name":
		return q.Name
	case "proto":
		return st.Proto
	case "size":
		return strconv.Itoa(r.Len())
	case "rcode":
		if s, ok := dns.RcodeToString[m.Rcode]; ok {
			return s
		}
		return strconv.Itoa(m.Rcode)
	case "rsize":
		return strconv.Itoa(m.Len())
	case "duration":
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	case ">id":
		return strconv.Itoa(int(r.Id))
	case ">opcode":
		return strconv.Itoa(r.Opcode)
	case ">do":
		o := r.IsEdns0()
		return strconv.FormatBool(o != nil && o.Do())
	case ">bufsize":
		if o := r.IsEdns0(); o != nil {
			return strconv.Itoa(int(o.UDPSize()))
		}
		return "512"
	case ">rflags":
		return flags(m)
	case "server_ip", "server_port", "local":
		return "-"
	}
	return "{" + p + "}"
}

// flags lists the header flags set in m, as CoreDNS's {>rflags}.
func flags(m *dns.Msg) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"},
		{m.RecursionAvailable, "ra"}, {m.Zero, "z"}, {m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	return strings.Join(f, ",")
}

var _ plugin.Handler = (*Handler)(nil)
