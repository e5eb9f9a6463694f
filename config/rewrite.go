package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Rewrite is one rewrite directive: one rule. The rewrite directives of a
// server block form one handler whose rules run in file order, as in
// CoreDNS:
//
//	rewrite [continue|stop] FIELD ARGS…
//	rewrite [continue|stop] {
//	    FIELD ARGS…
//	    [answer …]
//	}
//
// The block form is the one-line form written over several lines: the
// words of its lines are read as if they followed the directive's name,
// so a block holds one rule (a name rule and its answer options).
//
// stop (the default) ends the rules at this one when it matches; continue
// goes on to the next rule, which sees the query as this one left it.
//
// FIELD and ARGS are one of:
//
//	name [exact|prefix|suffix|substring|regex] FROM TO [answer auto|answer name FROM TO|answer value FROM TO]…
//	type FROM TO
//	class FROM TO
//	ttl [exact|prefix|suffix|substring|regex] NAME TTL|MIN-MAX|MIN-|-MAX
//	rcode [exact|prefix|suffix|substring|regex] NAME FROM TO
//
// name rewrites the question name: exact (the default when only FROM and
// TO are given) on the whole name, prefix and suffix on its start and end,
// substring anywhere (every occurrence is replaced), regex with a regular
// expression whose groups TO uses as {1}, {2}…. FROM and TO are made lower
// case and fully qualified as in CoreDNS (so `prefix foo bar` replaces a
// leading "foo." by "bar."), except a regex FROM, taken as written. Each
// answer option rewrites the records of the reply: auto maps the rewritten
// name back to the asked one in record names and values (an exact rule
// always does), name FROM TO rewrites record names matching the regular
// expression FROM to TO, value FROM TO likewise the names records point to
// (CNAME, DNAME, SRV, MX, NS, PTR, NAPTR, and the SOA's MNAME). The word
// answer may be left out after the first option; auto and answer name
// exclude each other.
//
// type and class rewrite the question's type or class (names as dig writes
// them: A, AAAA, ANY…; IN, CH, HS…) when it is FROM.
//
// ttl sets the TTL of every record of the reply to a name that matches to
// TTL, or into the range MIN-MAX (either end may be left out).
//
// rcode changes the reply's rcode FROM (a name such as SERVFAIL or a number
// up to 23) to TO for a name that matches.
//
// edns0 and cname are refused: svcdisc's forward does not carry a query's
// EDNS0 options upstream, and does not look a rewritten CNAME target up
// again.
type Rewrite struct {
	// Continue is the continue mode; false is stop.
	Continue bool
	// Field is name, type, class, ttl or rcode.
	Field string
	// Match is how name, ttl and rcode rules match the question name:
	// exact, prefix, suffix, substring or regex.
	Match string
	// From and To are the name rule's FROM and TO, normalised (a regex
	// From as written); the ttl and rcode rules' name is From.
	From, To string
	// Regexp is From compiled, for regex matches.
	Regexp *regexp.Regexp
	// Auto says the reply's names are mapped back to the asked name
	// (answer auto, and always for an exact name rule).
	Auto bool
	// Answers are the answer name and answer value options, in order.
	Answers []RewriteAnswer
	// FromType, ToType are the type rule's types; FromClass, ToClass the
	// class rule's classes.
	FromType, ToType   uint16
	FromClass, ToClass uint16
	// MinTTL, MaxTTL are the ttl rule's range (equal for a single TTL).
	MinTTL, MaxTTL uint32
	// FromRcode, ToRcode are the rcode rule's rcodes.
	FromRcode, ToRcode int
	Line               int
}

// RewriteAnswer is an answer name or answer value option: record names
// (Value false) or record values matching Regexp are replaced by To, in
// which {N} stands for the expression's group N.
type RewriteAnswer struct {
	Value  bool
	Regexp *regexp.Regexp
	To     string
}

// maxRewriteRegexp bounds a pattern's length, as CoreDNS does, so a
// Corefile cannot make compiling it take unbounded memory.
const maxRewriteRegexp = 10000

// rewriteMatches are the ways name, ttl and rcode rules match a name.
var rewriteMatches = []string{"exact", "prefix", "suffix", "substring", "regex"}

// word is a rule's word and the line it is on, for messages.
type word struct {
	s    string
	line int
}

// rewrite parses a rewrite directive into its rule.
func (p *parser) rewrite(d directive) (*Rewrite, error) {
	var ws []word
	for _, a := range d.args {
		ws = append(ws, word{a, d.line})
	}
	if len(d.block) > 0 {
		if len(d.args) >= 2 {
			return nil, errorf(p.filename, d.block[0].line,
				"rewrite: a block follows only `rewrite`, `rewrite stop` or `rewrite continue`: write the rule either on the directive's line or in the block")
		}
		fields := 0
		for _, a := range d.args {
			if isRewriteField(a) {
				fields++
			}
		}
		for _, o := range d.block {
			// After the rule's field, a line may be an answer option,
			// written with or without the word answer (`name FROM TO`
			// is one, as in CoreDNS); another field starts a second
			// rule, which a block cannot hold.
			if isRewriteField(o.name) && (fields == 0 || !(o.name == "name" && len(o.args) == 2)) {
				if fields++; fields > 1 && d.block[0].name != "answer" {
					return nil, errorf(p.filename, o.line,
						"rewrite: a rewrite block holds one rule, and %q starts another: write it as a rewrite directive of its own", o.name)
				}
			}
			ws = append(ws, word{o.name, o.line})
			for _, a := range o.args {
				ws = append(ws, word{a, o.line})
			}
		}
	}
	r := &Rewrite{Line: d.line}
	if len(ws) == 0 {
		return nil, errorf(p.filename, d.line, "rewrite: want a rule: rewrite [continue|stop] name|type|class|ttl|rcode …")
	}
	mode := ws[0]
	switch strings.ToLower(mode.s) {
	case "continue":
		r.Continue = true
		ws = ws[1:]
	case "stop":
		ws = ws[1:]
	}
	if len(ws) == 0 {
		return nil, errorf(p.filename, mode.line, "rewrite: %s must be followed by a rule: name|type|class|ttl|rcode …", mode.s)
	}
	r.Field = strings.ToLower(ws[0].s)
	line := ws[0].line
	args := ws[1:]
	var err error
	switch r.Field {
	case "name":
		err = p.rewriteName(r, line, args)
	case "type", "class":
		err = p.rewriteTypeClass(r, line, args)
	case "ttl", "rcode":
		err = p.rewriteResponse(r, line, args)
	case "edns0":
		return nil, errorf(p.filename, line,
			"rewrite edns0 is not supported: svcdisc's forward sends upstream a query of its own (the question, its EDNS buffer size and the DO bit), so an EDNS0 option set on the query would reach no one; remove it")
	case "answer":
		return nil, errorf(p.filename, line, "rewrite: response rewrites (answer …) must follow a name rule: write `name MATCH FROM TO answer …`")
	case "cname":
		return nil, errorf(p.filename, line,
			"rewrite cname is not supported: svcdisc does not resolve a rewritten CNAME target again; rewrite the question name (rewrite name …) instead")
	default:
		return nil, errorf(p.filename, line, "rewrite: unknown rule %q: want continue, stop, name, type, class, ttl or rcode", ws[0].s)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func isRewriteField(s string) bool {
	switch strings.ToLower(s) {
	case "name", "type", "class", "ttl", "rcode", "edns0", "cname":
		return true
	}
	return false
}

// normalizeName makes a rule's name lower case and fully qualified, as
// CoreDNS's plugin.Name.Normalize does.
func normalizeName(s string) string {
	return strings.ToLower(dns.Fqdn(s))
}

// compileRewrite compiles a rule's regular expression and checks that to
// uses no group it does not have.
func (p *parser) compileRewrite(line int, what, from, to string) (*regexp.Regexp, error) {
	if len(from) > maxRewriteRegexp {
		return nil, errorf(p.filename, line, "rewrite: %s: regular expression longer than %d characters", what, maxRewriteRegexp)
	}
	re, err := regexp.Compile(from)
	if err != nil {
		return nil, errorf(p.filename, line, "rewrite: %s: bad regular expression %q: %v", what, from, err)
	}
	for _, m := range groupRef.FindAllStringSubmatch(to, -1) {
		if n, _ := strconv.Atoi(m[1]); n > re.NumSubexp() {
			return nil, errorf(p.filename, line, "rewrite: %s: %q uses group {%d} but %q has %d group(s)", what, to, n, from, re.NumSubexp())
		}
	}
	return re, nil
}

var groupRef = regexp.MustCompile(`\{([0-9]+)\}`)

func (p *parser) matchType(w word, what string) (string, error) {
	m := strings.ToLower(w.s)
	for _, k := range rewriteMatches {
		if m == k {
			return m, nil
		}
	}
	hint := ""
	if m == "stop" || m == "continue" {
		hint = fmt.Sprintf(" (%s goes before the field: rewrite %s %s …)", m, m, what)
	}
	return "", errorf(p.filename, w.line, "rewrite: %s: unknown match %q: want exact, prefix, suffix, substring or regex%s", what, w.s, hint)
}

// rewriteName parses `name [MATCH] FROM TO [answer …]`.
func (p *parser) rewriteName(r *Rewrite, line int, args []word) error {
	switch {
	case len(args) < 2:
		return errorf(p.filename, line, "rewrite: name: want [exact|prefix|suffix|substring|regex] FROM TO, got %d argument(s)", len(args))
	case len(args) == 2:
		r.Match = "exact"
		r.From, r.To = normalizeName(args[0].s), normalizeName(args[1].s)
	default:
		m, err := p.matchType(args[0], "name")
		if err != nil {
			if len(args) > 3 && strings.ToLower(args[2].s) == "answer" {
				return errorf(p.filename, args[0].line, "rewrite: name: answer options need the match type: write `name exact %s %s answer …`", args[0].s, args[1].s)
			}
			return err
		}
		r.Match = m
		if m == "regex" {
			r.From, r.To = args[1].s, normalizeName(args[2].s)
			if r.Regexp, err = p.compileRewrite(args[1].line, "name", r.From, args[2].s); err != nil {
				return err
			}
		} else {
			r.From, r.To = normalizeName(args[1].s), normalizeName(args[2].s)
		}
	}
	if r.Match == "exact" {
		r.Auto = true // CoreDNS always maps an exact rewrite back
	}
	if _, ok := dns.IsDomainName(r.To); !ok && r.Match == "exact" {
		return errorf(p.filename, line, "rewrite: name: %q is not a domain name", r.To)
	}
	if len(args) > 3 {
		return p.rewriteAnswers(r, args[3:])
	}
	return nil
}

// rewriteAnswers parses the answer options of a name rule.
func (p *parser) rewriteAnswers(r *Rewrite, args []word) error {
	auto, names := false, 0
	for i := 0; i < len(args); {
		if args[i].s == "answer" {
			i++
		} else if i == 0 {
			return errorf(p.filename, args[i].line, "rewrite: name: unexpected %q after FROM TO: want answer auto, answer name FROM TO or answer value FROM TO", args[i].s)
		}
		if i == len(args) {
			return errorf(p.filename, args[i-1].line, "rewrite: name: answer: want auto, name FROM TO or value FROM TO")
		}
		kind := args[i]
		i++
		switch kind.s {
		case "auto":
			auto = true
		case "name", "value":
			if len(args)-i < 2 {
				return errorf(p.filename, kind.line, "rewrite: name: answer %s: 2 arguments required (FROM TO)", kind.s)
			}
			from, to := args[i], args[i+1]
			i += 2
			re, err := p.compileRewrite(from.line, "answer "+kind.s, from.s, to.s)
			if err != nil {
				return err
			}
			r.Answers = append(r.Answers, RewriteAnswer{Value: kind.s == "value", Regexp: re, To: normalizeName(to.s)})
			if kind.s == "name" {
				names++
			}
		default:
			return errorf(p.filename, kind.line, "rewrite: name: unknown answer %q: want auto, name FROM TO or value FROM TO", kind.s)
		}
	}
	if auto && names > 0 {
		return errorf(p.filename, args[0].line, "rewrite: name: answer auto and answer name exclude each other: keep one")
	}
	if auto {
		r.Auto = true
	}
	return nil
}

// rewriteTypeClass parses `type FROM TO` and `class FROM TO`.
func (p *parser) rewriteTypeClass(r *Rewrite, line int, args []word) error {
	if len(args) != 2 {
		return errorf(p.filename, line, "rewrite: %s: want FROM TO, got %d argument(s)", r.Field, len(args))
	}
	var vals [2]uint16
	for i, a := range args {
		var ok bool
		if r.Field == "type" {
			vals[i], ok = dns.StringToType[strings.ToUpper(a.s)]
		} else {
			vals[i], ok = dns.StringToClass[strings.ToUpper(a.s)]
		}
		if !ok {
			what := "a record type such as A, AAAA or ANY"
			if r.Field == "class" {
				what = "a class: IN, CH, HS, NONE or ANY"
			}
			return errorf(p.filename, a.line, "rewrite: %s: %q is not %s", r.Field, a.s, what)
		}
	}
	if r.Field == "type" {
		r.FromType, r.ToType = vals[0], vals[1]
	} else {
		r.FromClass, r.ToClass = vals[0], vals[1]
	}
	return nil
}

// rewriteResponse parses `ttl [MATCH] NAME TTL` and `rcode [MATCH] NAME
// FROM TO`.
func (p *parser) rewriteResponse(r *Rewrite, line int, args []word) error {
	n := 1 // values after NAME
	usage := "[exact|prefix|suffix|substring|regex] NAME TTL|MIN-MAX"
	if r.Field == "rcode" {
		n, usage = 2, "[exact|prefix|suffix|substring|regex] NAME FROM TO"
	}
	if len(args) != n+1 && len(args) != n+2 {
		return errorf(p.filename, line, "rewrite: %s: want %s, got %d argument(s)", r.Field, usage, len(args))
	}
	r.Match = "exact"
	if len(args) == n+2 {
		m, err := p.matchType(args[0], r.Field)
		if err != nil {
			return err
		}
		r.Match, args = m, args[1:]
	}
	if r.Match == "regex" {
		r.From = args[0].s
		var err error
		if r.Regexp, err = p.compileRewrite(args[0].line, r.Field, r.From, ""); err != nil {
			return err
		}
	} else {
		r.From = normalizeName(args[0].s)
	}
	if r.Field == "ttl" {
		lo, hi, ok := parseTTLRange(args[1].s)
		if !ok {
			return errorf(p.filename, args[1].line, "rewrite: ttl: %q is not a TTL or a range MIN-MAX, MIN- or -MAX of seconds", args[1].s)
		}
		r.MinTTL, r.MaxTTL = lo, hi
		return nil
	}
	for i, a := range args[1:] {
		rc, ok := parseRcode(a.s)
		if !ok {
			return errorf(p.filename, a.line, "rewrite: rcode: %q is not an rcode: want a name such as NOERROR, SERVFAIL, NXDOMAIN or a number up to 23", a.s)
		}
		if i == 0 {
			r.FromRcode = rc
		} else {
			r.ToRcode = rc
		}
	}
	return nil
}

// parseTTLRange reads N, MIN-MAX, MIN- (no upper bound) or -MAX.
func parseTTLRange(s string) (lo, hi uint32, ok bool) {
	num := func(s string) (uint32, bool) {
		n, err := strconv.ParseUint(s, 10, 32)
		return uint32(n), err == nil
	}
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		n, ok := num(s)
		return n, n, ok
	}
	if strings.Contains(b, "-") || a == "" && b == "" {
		return 0, 0, false
	}
	hi = 2147483647 // RFC 2181 8: the largest TTL
	if a != "" {
		if lo, ok = num(a); !ok {
			return 0, 0, false
		}
	}
	if b != "" {
		if hi, ok = num(b); !ok {
			return 0, 0, false
		}
	}
	return lo, hi, lo <= hi
}

func parseRcode(s string) (int, bool) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return int(n), n <= 23
	}
	rc, ok := dns.StringToRcode[strings.ToUpper(s)]
	return rc, ok
}
