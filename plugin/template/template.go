// Package template is the template directive's handler: it answers the
// queries of its zones, class and type whose name matches one of its
// regular expressions with records made from Go templates, as CoreDNS's
// template plugin does; one Handler per template directive.
package template

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	gotemplate "text/template"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "template"

// Handler is one template directive.
type Handler struct {
	cfg                           config.Template
	zones, fall                   plugin.Zones
	answer, additional, authority []*gotemplate.Template
	next                          plugin.Handler

	// Lookup, when set, resolves the target of a CNAME an A or AAAA
	// answer holds, as CoreDNS does through its own server: its answer
	// records are added after the CNAME. It returns nil when it cannot.
	Lookup plugin.Lookup
}

// New returns the handler of cfg in front of next.
func New(cfg *config.Template, next plugin.Handler) (*Handler, error) {
	h := &Handler{cfg: *cfg, zones: plugin.Zones(cfg.Zones), fall: plugin.Zones(cfg.Fallthrough), next: next}
	for _, s := range []struct {
		name  string
		texts []string
		out   *[]*gotemplate.Template
	}{{"answer", cfg.Answer, &h.answer}, {"additional", cfg.Additional, &h.additional}, {"authority", cfg.Authority, &h.authority}} {
		for _, text := range s.texts {
			t, err := config.ParseTemplate(s.name, text)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", s.name, text, err)
			}
			*s.out = append(*s.out, t)
		}
	}
	return h, nil
}

// Name implements plugin.Handler.
func (h *Handler) Name() string { return Name }

// Data is what a template text sees, as in CoreDNS.
type Data struct {
	// Zone is the template's zone the name is in; Name the query name in
	// lower case; Regex the expression that matched it.
	Zone, Name, Regex string
	// Match holds the whole match then each group's; Group maps group
	// numbers ("0", "1"...) and names to them.
	Match []string
	Group map[string]string
	// Class and Type are the query's (the template's when the query asks
	// for ANY), as text.
	Class, Type string
	Message     *dns.Msg
	Question    *dns.Question
	// Remote is the client's IP address.
	Remote string
}

// Meta returns "": svcdisc has no metadata directive. It is there so that
// templates written for CoreDNS's {{ .Meta "..." }} run.
func (d *Data) Meta(string) string { return "" }

// ServeDNS implements plugin.Handler.
func (h *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	zone := h.zones.Matches(st.Name)
	if zone == "" ||
		h.cfg.Class != dns.ClassANY && st.Class != dns.ClassANY && st.Class != h.cfg.Class ||
		h.cfg.Type != dns.TypeANY && st.Type != dns.TypeANY && st.Type != h.cfg.Type {
		return plugin.Next(ctx, h.next, st)
	}
	data := h.match(st, zone)
	if data == nil {
		if h.fall.Matches(st.Name) != "" {
			return plugin.Next(ctx, h.next, st)
		}
		return st.Error(Name, dns.RcodeServerFailure)
	}
	// The reply may depend on the client (.Remote) or the whole query
	// (.Message): never keep it in wire form.
	st.NoFast = true
	if h.cfg.Rcode == dns.RcodeServerFailure {
		return st.Error(Name, dns.RcodeServerFailure)
	}
	m := st.Reply()
	m.Authoritative = true
	m.Rcode = h.cfg.Rcode
	for _, sec := range []struct {
		name string
		ts   []*gotemplate.Template
		out  *[]dns.RR
	}{{"answer", h.answer, &m.Answer}, {"additional", h.additional, &m.Extra}, {"authority", h.authority, &m.Ns}} {
		for _, t := range sec.ts {
			rr, err := execute(t, data)
			if err != nil {
				st.Err = fmt.Errorf("template %s %s (line %d): %s: %w", dns.ClassToString[h.cfg.Class], dns.TypeToString[h.cfg.Type], h.cfg.Line, sec.name, err)
				return st.Error(Name, dns.RcodeServerFailure)
			}
			*sec.out = append(*sec.out, rr)
			if sec.name == "answer" {
				h.chase(ctx, st, m, rr)
			}
		}
	}
	if e := h.cfg.EDE; e != nil {
		if opt := m.IsEdns0(); opt != nil {
			opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: e.Code, ExtraText: e.Reason})
		}
	}
	st.By = Name
	return m
}

// chase adds to m the answer to the target of rr, when rr is a CNAME
// answering an A or AAAA query.
func (h *Handler) chase(ctx context.Context, st *plugin.State, m *dns.Msg, rr dns.RR) {
	cname, ok := rr.(*dns.CNAME)
	if !ok || st.Type != dns.TypeA && st.Type != dns.TypeAAAA {
		return
	}
	up := h.Lookup.Chase(ctx, st, cname.Target, st.Type)
	if up == nil {
		return
	}
	m.Truncated = up.Truncated
	m.Answer = append(m.Answer, up.Answer...)
}

// match returns the data of st's name for the first expression that
// matches it, nil when none does.
func (h *Handler) match(st *plugin.State, zone string) *Data {
	for _, re := range h.cfg.Match {
		groups := re.FindStringSubmatch(st.Name)
		if groups == nil {
			continue
		}
		q := st.Req.Question[0]
		d := &Data{Zone: zone, Name: st.Name, Regex: re.String(), Match: groups, Group: group(re, groups),
			Class: dns.ClassToString[st.Class], Type: dns.TypeToString[st.Type], Message: st.Req, Question: &q}
		if st.Class == dns.ClassANY {
			d.Class = dns.ClassToString[h.cfg.Class]
		}
		if st.Type == dns.TypeANY {
			d.Type = dns.TypeToString[h.cfg.Type]
		}
		if st.Remote != nil {
			if host, _, err := net.SplitHostPort(st.Remote.String()); err == nil {
				d.Remote = host
			}
		}
		return d
	}
	return nil
}

func group(re *regexp.Regexp, groups []string) map[string]string {
	g := make(map[string]string, len(groups))
	for i, m := range groups {
		g[strconv.Itoa(i)] = m
	}
	for i, name := range re.SubexpNames() {
		if name != "" {
			g[name] = groups[i]
		}
	}
	return g
}

// execute makes one record from t.
func execute(t *gotemplate.Template, d *Data) (dns.RR, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, err
	}
	rr, err := dns.NewRR(b.String())
	if err != nil {
		return nil, fmt.Errorf("%q is not a resource record: %w", b.String(), err)
	}
	if rr == nil {
		return nil, fmt.Errorf("the template made no resource record")
	}
	return rr, nil
}

var _ plugin.Handler = (*Handler)(nil)
