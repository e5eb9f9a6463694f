package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// rewriteWant is what a parsed rewrite rule must hold; the regular
// expressions are compared by their text.
type rewriteWant struct {
	Continue           bool
	Field, Match       string
	From, To           string
	Regexp             string
	Auto               bool
	Answers            []string // "name RE TO" or "value RE TO"
	FromType, ToType   uint16
	FromClass, ToClass uint16
	MinTTL, MaxTTL     uint32
	FromRcode, ToRcode int
}

func rewriteOf(r *Rewrite) rewriteWant {
	w := rewriteWant{Continue: r.Continue, Field: r.Field, Match: r.Match, From: r.From, To: r.To, Auto: r.Auto,
		FromType: r.FromType, ToType: r.ToType, FromClass: r.FromClass, ToClass: r.ToClass,
		MinTTL: r.MinTTL, MaxTTL: r.MaxTTL, FromRcode: r.FromRcode, ToRcode: r.ToRcode}
	if r.Regexp != nil {
		w.Regexp = r.Regexp.String()
	}
	for _, a := range r.Answers {
		kind := "name"
		if a.Value {
			kind = "value"
		}
		w.Answers = append(w.Answers, kind+" "+a.Regexp.String()+" "+a.To)
	}
	return w
}

func TestParseRewrite(t *testing.T) {
	tests := []struct {
		name string
		in   string // the directive's lines, inside a server block from line 2
		want []rewriteWant
	}{
		{name: "exact name without a match type maps the answer back",
			in:   "rewrite name Foo.Example.org bar.svc.cluster.local",
			want: []rewriteWant{{Field: "name", Match: "exact", From: "foo.example.org.", To: "bar.svc.cluster.local.", Auto: true}}},
		{name: "explicit exact with stop",
			in:   "rewrite stop name exact a.com. b.com.",
			want: []rewriteWant{{Field: "name", Match: "exact", From: "a.com.", To: "b.com.", Auto: true}}},
		{name: "prefix and substring are fully qualified as in CoreDNS",
			in: "rewrite continue name prefix foo bar\nrewrite name substring .corp.internal .svc.cluster.local answer auto",
			want: []rewriteWant{
				{Continue: true, Field: "name", Match: "prefix", From: "foo.", To: "bar."},
				{Field: "name", Match: "substring", From: ".corp.internal.", To: ".svc.cluster.local.", Auto: true}}},
		{name: "suffix with answer auto",
			in:   "rewrite name suffix .example.org .svc.cluster.local answer auto",
			want: []rewriteWant{{Field: "name", Match: "suffix", From: ".example.org.", To: ".svc.cluster.local.", Auto: true}}},
		{name: "regex keeps its pattern and answer options may omit the word answer",
			in: `rewrite name regex (.*)-(us-west-1)\.example\.org {1}.service.{2}.consul answer name (.*)\.service\.(us-west-1)\.consul {1}-{2}.example.org value (.*)\.consul {1}.org`,
			want: []rewriteWant{{Field: "name", Match: "regex", From: `(.*)-(us-west-1)\.example\.org`, Regexp: `(.*)-(us-west-1)\.example\.org`,
				To:      "{1}.service.{2}.consul.",
				Answers: []string{`name (.*)\.service\.(us-west-1)\.consul {1}-{2}.example.org.`, `value (.*)\.consul {1}.org.`}}}},
		{name: "block form is one rule",
			in: "rewrite stop {\n    name regex (.*)\\.my\\.domain\\.$ {1}.ns.svc.cluster.local\n    answer name (.*)\\.ns\\.svc\\.cluster\\.local\\.$ {1}.my.domain\n}",
			want: []rewriteWant{{Field: "name", Match: "regex", From: `(.*)\.my\.domain\.$`, Regexp: `(.*)\.my\.domain\.$`, To: "{1}.ns.svc.cluster.local.",
				Answers: []string{`name (.*)\.ns\.svc\.cluster\.local\.$ {1}.my.domain.`}}}},
		{name: "block form without a mode, and a later name line as an answer name",
			in: "rewrite {\n    name regex (a)\\.x a.y\n    answer value (.*)\\.y {1}.x\n    name (.*)\\.y {1}.x\n}",
			want: []rewriteWant{{Field: "name", Match: "regex", From: `(a)\.x`, Regexp: `(a)\.x`, To: "a.y.",
				Answers: []string{`value (.*)\.y {1}.x.`, `name (.*)\.y {1}.x.`}}}},
		{name: "block form with the mode on a line of its own",
			in:   "rewrite {\n    continue\n    name suffix .a .b\n    answer auto\n}",
			want: []rewriteWant{{Continue: true, Field: "name", Match: "suffix", From: ".a.", To: ".b.", Auto: true}}},
		{name: "type and class",
			in: "rewrite stop type AAAA A\nrewrite continue class ch in",
			want: []rewriteWant{{Field: "type", FromType: dns.TypeAAAA, ToType: dns.TypeA},
				{Continue: true, Field: "class", FromClass: dns.ClassCHAOS, ToClass: dns.ClassINET}}},
		{name: "ttl forms",
			in: "rewrite ttl example.com. 30\nrewrite ttl suffix .example.com 30-300\nrewrite continue {\n    ttl regex (.*)\\.example\\.com -30\n}\nrewrite ttl prefix www 30-",
			want: []rewriteWant{
				{Field: "ttl", Match: "exact", From: "example.com.", MinTTL: 30, MaxTTL: 30},
				{Field: "ttl", Match: "suffix", From: ".example.com.", MinTTL: 30, MaxTTL: 300},
				{Continue: true, Field: "ttl", Match: "regex", From: `(.*)\.example\.com`, Regexp: `(.*)\.example\.com`, MinTTL: 0, MaxTTL: 30},
				{Field: "ttl", Match: "prefix", From: "www.", MinTTL: 30, MaxTTL: 2147483647}}},
		{name: "rcode by name or number",
			in: "rewrite rcode example.com SERVFAIL NOERROR\nrewrite rcode substring example 3 0",
			want: []rewriteWant{
				{Field: "rcode", Match: "exact", From: "example.com.", FromRcode: 2, ToRcode: 0},
				{Field: "rcode", Match: "substring", From: "example.", FromRcode: 3, ToRcode: 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("Corefile", strings.NewReader(". {\n"+tt.in+"\n    forward . 127.0.0.1\n}\n"))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Servers[0].Rewrites
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rules, want %d", len(got), len(tt.want))
			}
			for i, r := range got {
				if g := rewriteOf(r); !equalRewrite(g, tt.want[i]) {
					t.Errorf("rule %d:\n got %+v\nwant %+v", i, g, tt.want[i])
				}
			}
		})
	}
}

func equalRewrite(a, b rewriteWant) bool { return reflect.DeepEqual(a, b) }

func TestParseRewriteErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no rule", "rewrite", "Corefile:2: rewrite: want a rule"},
		{"mode without a rule", "rewrite stop", "Corefile:2: rewrite: stop must be followed by a rule"},
		{"mode alone in a block", "rewrite {\n    continue\n}", "Corefile:3: rewrite: continue must be followed by a rule"},
		{"empty block", "rewrite {\n}", "Corefile:2: rewrite: want a rule"},
		{"unknown mode or field", "rewrite unknown-action name a.com b.com", `Corefile:2: rewrite: unknown rule "unknown-action"`},
		{"name with one argument", "rewrite name a.com", "Corefile:2: rewrite: name: want [exact|prefix|suffix|substring|regex] FROM TO, got 1"},
		{"name with three names", "rewrite name a.com b.com c.com", `Corefile:2: rewrite: name: unknown match "a.com"`},
		{"mode after the field (kubespray's example)", "rewrite name stop website.tld website.ns.svc.cluster.local",
			`Corefile:2: rewrite: name: unknown match "stop": want exact, prefix, suffix, substring or regex (stop goes before the field: rewrite stop name …)`},
		{"answer without a match type", "rewrite name a.com b.com answer auto", "answer options need the match type: write `name exact a.com b.com answer …`"},
		{"bad regex", "rewrite name regex ([a]\\.com new-{1}.com", `Corefile:2: rewrite: name: bad regular expression "([a]\\.com"`},
		{"regex group it does not have", "rewrite name regex (a)\\.com {2}.b.com", `Corefile:2: rewrite: name: "{2}.b.com" uses group {2} but "(a)\\.com" has 1 group(s)`},
		{"too many words after FROM TO", "rewrite name regex (a)\\.com {1}.b.com answer name (b) {1} too.long way.too.long", `Corefile:2: rewrite: name: unknown answer "too.long"`},
		{"not answer after FROM TO", "rewrite name regex (a)\\.com {1}.b NoAnswer name (b) {1}", `Corefile:2: rewrite: name: unexpected "NoAnswer" after FROM TO`},
		{"answer ttl", "rewrite name regex (a)\\.com {1}.b answer ttl (b) {1}", `unknown answer "ttl"`},
		{"answer name with one argument", "rewrite name regex (a)\\.com {1}.b answer name (b)", "answer name: 2 arguments required"},
		{"answer auto with answer name", "rewrite name prefix a b answer auto answer name (b) {1}", "answer auto and answer name exclude each other"},
		{"answer first", "rewrite stop {\n    answer name bar foo\n    name regex foo bar\n}", "Corefile:3: rewrite: response rewrites (answer …) must follow a name rule"},
		{"second rule in a block (CoreDNS issue 1708)", "rewrite continue {\n    name regex ldap.feres.lab ldap.default.svc.cluster.local\n    answer name ldap.default.svc.cluster.local ldap.feres.lab\n    type ANY A\n}",
			`Corefile:5: rewrite: a rewrite block holds one rule, and "type" starts another: write it as a rewrite directive of its own`},
		{"block after a whole rule", "rewrite name a b {\n    answer auto\n}", "Corefile:3: rewrite: a block follows only `rewrite`"},
		{"bad type", "rewrite type XY A", `Corefile:2: rewrite: type: "XY" is not a record type`},
		{"type with three arguments", "rewrite type any a a", "Corefile:2: rewrite: type: want FROM TO, got 3"},
		{"bad class", "rewrite class IN WV", `Corefile:2: rewrite: class: "WV" is not a class`},
		{"bad ttl", "rewrite ttl example.com -", `Corefile:2: rewrite: ttl: "-" is not a TTL`},
		{"reversed ttl range", "rewrite ttl example.com 300-30", `rewrite: ttl: "300-30" is not a TTL`},
		{"ttl bad match", "rewrite ttl foo example.com 30", `Corefile:2: rewrite: ttl: unknown match "foo"`},
		{"ttl too many", "rewrite ttl exact example.com 30 40", "rewrite: ttl: want [exact|prefix|suffix|substring|regex] NAME TTL|MIN-MAX, got 4"},
		{"bad rcode", "rewrite rcode example.com SERVFAIL 24", `Corefile:2: rewrite: rcode: "24" is not an rcode`},
		{"cname", "rewrite cname exact a.com. b.com.", "Corefile:2: rewrite cname is not supported"},
		{"edns0 (forward does not carry options upstream)", "rewrite edns0 subnet set 24 56", "Corefile:2: rewrite edns0 is not supported: svcdisc's forward sends upstream a query of its own"},
		{"edns0 in a block", "rewrite continue {\n    edns0 local set 0xffee abcd\n}", "Corefile:3: rewrite edns0 is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("Corefile", strings.NewReader(". {\n"+tt.in+"\n    forward . 127.0.0.1\n}\n"))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || !wellFormed.MatchString(err.Error()) {
				t.Errorf("error %q is not FILE:LINE: message", err)
			}
		})
	}
}

// FuzzParseRewrite: whatever follows rewrite, the parser answers a rule or
// a FILE:LINE error, and never panics.
func FuzzParseRewrite(f *testing.F) {
	for _, s := range []string{
		"rewrite name a.com b.com",
		"rewrite continue name regex (.*)\\.a {1}.b answer name (.*)\\.b {1}.a value (.*)\\.b {1}.a",
		"rewrite stop {\n    name suffix .a .b\n    answer auto\n}",
		"rewrite {\n    continue\n}",
		"rewrite ttl prefix a 10-20",
		"rewrite rcode a SERVFAIL 0",
		"rewrite type ANY A",
		"rewrite class CH IN",
		"rewrite edns0 local set 1 2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		_, err := Parse("Corefile", strings.NewReader(". {\n"+in+"\n}\n"))
		if err != nil && !wellFormed.MatchString(err.Error()) {
			t.Fatalf("error %q is not of the form FILE:LINE: lower-case message", err)
		}
	})
}
