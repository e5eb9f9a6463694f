package config

import (
	"reflect"
	"regexp"
	"testing"

	"github.com/miekg/dns"
)

func res(exprs ...string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, e := range exprs {
		out = append(out, regexp.MustCompile(e))
	}
	return out
}

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		name, in string
		want     []*Template
		wantErr  string
	}{
		{name: "AAAA filtering: rcode only, every name of the block",
			in:   ". {\n    template IN AAAA {\n        rcode NOERROR\n    }\n}\n",
			want: []*Template{{Class: dns.ClassINET, Type: dns.TypeAAAA, Zones: []string{"."}, Match: res(".*"), Line: 2}}},
		{name: "no block at all, class and type ANY",
			in:   "example.org {\n    template ANY ANY\n}\n",
			want: []*Template{{Class: dns.ClassANY, Type: dns.TypeANY, Zones: []string{"example.org."}, Match: res(".*"), Line: 2}}},
		{name: "every option, repeated ones adding up",
			in: ". {\n    template in a Example.ORG example.net {\n        match \"^ip-(?P<a>[0-9]+)[.]\" ^x[.]\n        match ^y[.]\n" +
				"        answer \"{{ .Name }} 60 IN A 10.0.0.{{ .Group.a }}\"\n        answer \"{{ .Name }} 60 IN A 10.0.0.1\"\n" +
				"        additional \"ns.example.org. 60 IN A 192.0.2.1\"\n        authority \"example.org. 60 IN NS ns.example.org.\"\n" +
				"        rcode nxdomain\n        ederror 21 \"Blocked\"\n        fallthrough example.net\n        upstream 8.8.8.8\n    }\n}\n",
			want: []*Template{{Class: dns.ClassINET, Type: dns.TypeA, Zones: []string{"example.org.", "example.net."},
				Match:      res("^ip-(?P<a>[0-9]+)[.]", `^x[.]`, `^y[.]`),
				Answer:     []string{"{{ .Name }} 60 IN A 10.0.0.{{ .Group.a }}", "{{ .Name }} 60 IN A 10.0.0.1"},
				Additional: []string{"ns.example.org. 60 IN A 192.0.2.1"}, Authority: []string{"example.org. 60 IN NS ns.example.org."},
				Rcode: dns.RcodeNameError, EDE: &EDE{Code: 21, Reason: "Blocked"}, Fallthrough: []string{"example.net."}, Line: 2}}},
		{name: "several templates in file order",
			in: ". {\n    template IN A example.org {\n        answer \"{{ .Name }} 60 IN A 192.0.2.1\"\n        fallthrough\n    }\n" +
				"    template IN MX example.org {\n        answer \"{{ .Name }} 60 IN MX 10 {{ .Name }}\"\n    }\n}\n",
			want: []*Template{
				{Class: dns.ClassINET, Type: dns.TypeA, Zones: []string{"example.org."}, Match: res(".*"), Answer: []string{"{{ .Name }} 60 IN A 192.0.2.1"}, Fallthrough: []string{"."}, Line: 2},
				{Class: dns.ClassINET, Type: dns.TypeMX, Zones: []string{"example.org."}, Match: res(".*"), Answer: []string{"{{ .Name }} 60 IN MX 10 {{ .Name }}"}, Line: 6},
			}},
		{name: "parseInt is known",
			in: ". {\n    template IN A {\n        answer \"{{ .Name }} 60 IN A 10.{{ parseInt .Group.b 16 8 }}.0.1\"\n    }\n}\n",
			want: []*Template{{Class: dns.ClassINET, Type: dns.TypeA, Zones: []string{"."}, Match: res(".*"),
				Answer: []string{"{{ .Name }} 60 IN A 10.{{ parseInt .Group.b 16 8 }}.0.1"}, Line: 2}}},

		{name: "no class or type", in: ". {\n    template\n}\n", wantErr: "Corefile:2: template: want CLASS TYPE [ZONES...]"},
		{name: "type only", in: ". {\n    template AAAA\n}\n", wantErr: "Corefile:2: template: want CLASS TYPE [ZONES...]"},
		{name: "unknown class", in: ". {\n    template INET A\n}\n", wantErr: `Corefile:2: template: "INET" is not a query class: want IN, CH, HS or ANY`},
		{name: "unknown type", in: ". {\n    template IN AAA\n}\n", wantErr: `Corefile:2: template: "AAA" is not a record type`},
		{name: "bad zone", in: ". {\n    template IN A ex!ample\n}\n", wantErr: `Corefile:2: template: "ex!ample" is not a valid zone name`},
		{name: "match without expression", in: ". {\n    template IN A {\n        match\n    }\n}\n", wantErr: "Corefile:3: match: want at least one regular expression"},
		{name: "bad expression", in: ". {\n    template IN A {\n        match (abc\n    }\n}\n", wantErr: `Corefile:3: match: "(abc": error parsing regexp`},
		{name: "bad template", in: ". {\n    template IN A {\n        answer \"{{ .Name 60 IN A 1.2.3.4\"\n    }\n}\n", wantErr: `Corefile:3: answer: "{{ .Name 60 IN A 1.2.3.4"`},
		{name: "unknown template function", in: ". {\n    template IN A {\n        additional \"{{ lower .Name }} 60 IN A 1.2.3.4\"\n    }\n}\n", wantErr: `Corefile:3: additional: "{{ lower .Name }} 60 IN A 1.2.3.4": template: additional:1: function "lower" not defined`},
		{name: "answer without a record", in: ". {\n    template IN A {\n        answer\n    }\n}\n", wantErr: "Corefile:3: answer: want a record template"},
		{name: "unknown rcode", in: ". {\n    template IN A {\n        rcode NODATA\n    }\n}\n", wantErr: `Corefile:3: rcode: "NODATA" is not a response code: want NOERROR`},
		{name: "extended rcode", in: ". {\n    template IN A {\n        rcode BADCOOKIE\n    }\n}\n", wantErr: `Corefile:3: rcode: "BADCOOKIE" is not a response code`},
		{name: "rcode without a code", in: ". {\n    template IN A {\n        rcode\n    }\n}\n", wantErr: "Corefile:3: rcode: want 1 argument(s), got 0"},
		{name: "ederror not a number", in: ". {\n    template IN A {\n        ederror blocked\n    }\n}\n", wantErr: `Corefile:3: ederror: "blocked" is not an extended error code`},
		{name: "unknown option", in: ". {\n    template IN A {\n        ttl 60\n    }\n}\n", wantErr: `Corefile:3: template: unknown option "ttl": want match, answer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := parseBlock(t, tt.in)
			if tt.wantErr != "" {
				checkErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(srv.Templates, tt.want) {
				t.Errorf("Templates =\n%+v\nwant\n%+v", deref(srv.Templates), deref(tt.want))
			}
		})
	}
}

func deref(ts []*Template) []Template {
	var out []Template
	for _, t := range ts {
		out = append(out, *t)
	}
	return out
}
