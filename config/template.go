package config

import (
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/miekg/dns"
)

// Template is one template directive: answers made from Go templates for
// the queries it matches, as CoreDNS's template plugin:
//
//	template CLASS TYPE [ZONES...] {
//	    match REGEX...
//	    answer RR...
//	    additional RR...
//	    authority RR...
//	    rcode CODE
//	    ederror CODE [REASON]
//	    fallthrough [ZONES...]
//	    upstream
//	}
//
// CLASS (IN, CH, ANY...) and TYPE (A, AAAA, PTR, ANY...) select the
// queries; ANY matches every class or type, and a query of class or type
// ANY matches every template. ZONES limit the names (default the server
// block's zones). match holds Go regular expressions tried in order on the
// lower-case query name (default one that matches every name); may be
// repeated. answer, additional and authority are Go text/template texts
// making one resource record each, in zone-file form, for the reply's
// sections; they may be repeated. rcode is the reply's code (default
// NOERROR). ederror adds an extended DNS error (RFC 8914) to the reply.
// fallthrough hands a query of the template's zones, class and type that no
// regular expression matches to the next handler (only for the fallthrough
// ZONES when given), instead of answering SERVFAIL. upstream is accepted and
// ignored, as in CoreDNS (deprecated).
type Template struct {
	Class, Type uint16
	Zones       []string
	// Match is never empty: ".*" when the block has no match.
	Match                         []*regexp.Regexp
	Answer, Additional, Authority []string
	Rcode                         int
	// EDE is the extended error of the reply, nil for none.
	EDE         *EDE
	Fallthrough []string
	Line        int
}

// EDE is an extended DNS error (RFC 8914): its info code and extra text.
type EDE struct {
	Code   uint16
	Reason string
}

// TemplateFuncs are the functions template texts may call, as in CoreDNS:
// parseInt is strconv.ParseUint.
var TemplateFuncs = template.FuncMap{"parseInt": strconv.ParseUint}

// maxRegexpLen bounds a match expression, as CoreDNS does.
const maxRegexpLen = 10000

// ParseTemplate compiles one answer, additional or authority text of a
// template directive; name names it in errors.
func ParseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(TemplateFuncs).Parse(text)
}

// template parses one template directive, described at Template.
func (p *parser) template(d directive, serverZones []string) (*Template, error) {
	if len(d.args) < 2 {
		return nil, errorf(p.filename, d.line, "template: want CLASS TYPE [ZONES...], e.g. template IN A example.org")
	}
	t := &Template{Line: d.line}
	var ok bool
	if t.Class, ok = dns.StringToClass[strings.ToUpper(d.args[0])]; !ok {
		return nil, errorf(p.filename, d.line, "template: %q is not a query class: want IN, CH, HS or ANY", d.args[0])
	}
	if t.Type, ok = dns.StringToType[strings.ToUpper(d.args[1])]; !ok {
		return nil, errorf(p.filename, d.line, "template: %q is not a record type: want A, AAAA, PTR, ANY...", d.args[1])
	}
	var err error
	if t.Zones, err = p.normalizedZones(d.line, "template", d.args[2:]); err != nil {
		return nil, err
	}
	if len(t.Zones) == 0 {
		t.Zones = append([]string(nil), serverZones...)
	}
	for _, o := range d.block {
		switch o.name {
		case "match":
			if len(o.args) == 0 {
				return nil, errorf(p.filename, o.line, "match: want at least one regular expression")
			}
			for _, a := range o.args {
				if len(a) > maxRegexpLen {
					return nil, errorf(p.filename, o.line, "match: regular expression of %d characters: at most %d", len(a), maxRegexpLen)
				}
				re, err := regexp.Compile(a)
				if err != nil {
					return nil, errorf(p.filename, o.line, "match: %q: %v", a, err)
				}
				t.Match = append(t.Match, re)
			}
		case "answer", "additional", "authority":
			if len(o.args) == 0 {
				return nil, errorf(p.filename, o.line, "%s: want a record template, e.g. %s \"{{ .Name }} 60 IN A 192.0.2.1\"", o.name, o.name)
			}
			for _, a := range o.args {
				if _, err := ParseTemplate(o.name, a); err != nil {
					return nil, errorf(p.filename, o.line, "%s: %q: %v", o.name, a, err)
				}
			}
			switch o.name {
			case "answer":
				t.Answer = append(t.Answer, o.args...)
			case "additional":
				t.Additional = append(t.Additional, o.args...)
			default:
				t.Authority = append(t.Authority, o.args...)
			}
		case "rcode":
			if err := p.wantArgs(o, 1, 1); err != nil {
				return nil, err
			}
			rc, ok := dns.StringToRcode[strings.ToUpper(o.args[0])]
			if !ok || rc > 0xF {
				return nil, errorf(p.filename, o.line, "rcode: %q is not a response code: want NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH or NOTZONE", o.args[0])
			}
			t.Rcode = rc
		case "ederror":
			if err := p.wantArgs(o, 1, 2); err != nil {
				return nil, err
			}
			code, err := strconv.ParseUint(o.args[0], 10, 16)
			if err != nil {
				return nil, errorf(p.filename, o.line, "ederror: %q is not an extended error code (0 to 65535)", o.args[0])
			}
			t.EDE = &EDE{Code: uint16(code)}
			if len(o.args) == 2 {
				t.EDE.Reason = o.args[1]
			}
		case "fallthrough":
			if t.Fallthrough, err = p.fallthroughOf(o); err != nil {
				return nil, err
			}
		case "upstream":
			// Deprecated and ignored by CoreDNS too.
		default:
			return nil, errorf(p.filename, o.line,
				"template: unknown option %q: want match, answer, additional, authority, rcode, ederror or fallthrough", o.name)
		}
	}
	if len(t.Match) == 0 {
		t.Match = []*regexp.Regexp{regexp.MustCompile(".*")}
	}
	return t, nil
}
