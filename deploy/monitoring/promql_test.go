package monitoring

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// A small PromQL scanner: enough to find the metric names and label names an
// expression uses, without github.com/prometheus/prometheus (a very large
// module) in go.mod. promtool, when installed, checks the full syntax.

// selector is one vector selector: a metric name and the label names of its
// matchers.
type selector struct {
	name   string
	labels []string
}

// refs is what an expression refers to.
type refs struct {
	selectors []selector
	// grouping holds the label names of by, without, on, ignoring,
	// group_left and group_right.
	grouping []string
}

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tNumber
	tPunct
)

type token struct {
	kind tokKind
	text string // a string's text is its unquoted value
}

// grafanaIntervals are the Grafana variables that stand for a duration; the
// others may only appear inside strings (label matcher values).
var grafanaIntervals = []string{"$__rate_interval", "$__interval", "$__range"}

func lex(expr string) ([]token, error) {
	for _, v := range grafanaIntervals {
		expr = strings.ReplaceAll(expr, v, "5m")
	}
	var toks []token
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			var b strings.Builder
			for ; j < len(expr) && expr[j] != c; j++ {
				if expr[j] == '\\' && c != '`' && j+1 < len(expr) {
					j++
				}
				b.WriteByte(expr[j])
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			toks = append(toks, token{tString, b.String()})
			i = j + 1
		case isDigit(c) || c == '.' && i+1 < len(expr) && isDigit(expr[i+1]):
			j := i
			for j < len(expr) && (isDigit(expr[j]) || isIdentStart(expr[j]) && expr[j] != ':' || expr[j] == '.') {
				j++
			}
			toks = append(toks, token{tNumber, expr[i:j]})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(expr) && (isIdentStart(expr[j]) || isDigit(expr[j])) {
				j++
			}
			toks = append(toks, token{tIdent, expr[i:j]})
			i = j
		case c == '$':
			return nil, fmt.Errorf("template variable outside a string at %d: %q", i, expr[i:min(i+20, len(expr))])
		default:
			toks = append(toks, token{tPunct, string(c)})
			i++
		}
	}
	return toks, nil
}

// promqlFuncs are PromQL's functions and aggregation operators.
var promqlFuncs = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time
		ceil changes clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
		days_in_month deg delta deriv double_exponential_smoothing exp floor histogram_avg histogram_count
		histogram_fraction histogram_quantile histogram_stddev histogram_stdvar histogram_sum holt_winters hour
		idelta increase info irate label_join label_replace last_over_time ln log10 log2 mad_over_time
		max_over_time min_over_time minute month pi predict_linear present_over_time quantile_over_time rad rate
		resets round scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time
		stdvar_over_time sum_over_time tan tanh time timestamp vector year`) {
		promqlFuncs[f] = true
	}
	for a := range aggregators {
		promqlFuncs[a] = true
	}
}

var aggregators = map[string]bool{"sum": true, "avg": true, "count": true, "min": true, "max": true, "group": true,
	"stddev": true, "stdvar": true, "topk": true, "bottomk": true, "quantile": true, "count_values": true,
	"limitk": true, "limit_ratio": true}

var groupingWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true}

var keywords = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true,
	"atan2": true, "inf": true, "nan": true}

// parsePromQL returns the selectors and grouping labels of expr.
func parsePromQL(expr string) (refs, error) {
	toks, err := lex(expr)
	if err != nil {
		return refs{}, err
	}
	var r refs
	depth := 0
	peek := func(i int, text string) bool { return i < len(toks) && toks[i].kind == tPunct && toks[i].text == text }
	// labelList reads "( name, ... )" from toks[i], which is "(", and returns
	// the index after ")".
	labelList := func(i int) ([]string, int, error) {
		var names []string
		for i++; i < len(toks); i++ {
			switch t := toks[i]; {
			case t.kind == tPunct && t.text == ")":
				return names, i + 1, nil
			case t.kind == tPunct && t.text == ",":
			case t.kind == tIdent:
				names = append(names, t.text)
			default:
				return nil, 0, fmt.Errorf("unexpected %q in a label list", t.text)
			}
		}
		return nil, 0, fmt.Errorf("unterminated label list")
	}
	// matchers reads "{ name op "value", ... }" from toks[i], which is "{".
	matchers := func(i int) (map[string]string, []string, int, error) {
		eq := map[string]string{}
		var names []string
		for i++; i < len(toks); {
			if peek(i, "}") {
				return eq, names, i + 1, nil
			}
			if toks[i].kind != tIdent {
				return nil, nil, 0, fmt.Errorf("expected a label name in a selector, got %q", toks[i].text)
			}
			name := toks[i].text
			i++
			var op string
			for i < len(toks) && toks[i].kind == tPunct && strings.Contains("=!~", toks[i].text) {
				op += toks[i].text
				i++
			}
			if !slices.Contains([]string{"=", "!=", "=~", "!~"}, op) || i >= len(toks) || toks[i].kind != tString {
				return nil, nil, 0, fmt.Errorf("bad matcher for label %q", name)
			}
			if op == "=" {
				eq[name] = toks[i].text
			}
			names = append(names, name)
			i++
			if peek(i, ",") {
				i++
			}
		}
		return nil, nil, 0, fmt.Errorf("unterminated selector")
	}
	for i := 0; i < len(toks); {
		t := toks[i]
		switch {
		case t.kind == tIdent:
			lower := strings.ToLower(t.text)
			switch {
			case groupingWords[lower]:
				if peek(i+1, "(") {
					names, next, err := labelList(i + 1)
					if err != nil {
						return refs{}, err
					}
					r.grouping = append(r.grouping, names...)
					i = next
					continue
				}
				if lower != "group_left" && lower != "group_right" {
					return refs{}, fmt.Errorf("%s without a label list", t.text)
				}
				i++
			case keywords[lower]:
				i++
			case peek(i+1, "("):
				if !promqlFuncs[lower] {
					return refs{}, fmt.Errorf("unknown function %q", t.text)
				}
				i++
			case aggregators[lower]:
				i++
			default:
				s := selector{name: t.text}
				i++
				if peek(i, "{") {
					_, names, next, err := matchers(i)
					if err != nil {
						return refs{}, err
					}
					s.labels, i = names, next
				}
				r.selectors = append(r.selectors, s)
			}
		case t.kind == tPunct && t.text == "{":
			eq, names, next, err := matchers(i)
			if err != nil {
				return refs{}, err
			}
			if eq["__name__"] == "" {
				return refs{}, fmt.Errorf("a selector without a metric name")
			}
			r.selectors = append(r.selectors, selector{name: eq["__name__"], labels: slices.DeleteFunc(names, func(n string) bool { return n == "__name__" })})
			i = next
		case t.kind == tPunct && t.text == "[":
			for i < len(toks) && !peek(i, "]") {
				i++
			}
			if i == len(toks) {
				return refs{}, fmt.Errorf("unterminated range")
			}
			i++
		case t.kind == tPunct && t.text == "(":
			depth++
			i++
		case t.kind == tPunct && t.text == ")":
			if depth--; depth < 0 {
				return refs{}, fmt.Errorf("unbalanced )")
			}
			i++
		case t.kind == tPunct && (t.text == "}" || t.text == "]"):
			return refs{}, fmt.Errorf("unbalanced %s", t.text)
		default:
			i++
		}
	}
	if depth != 0 {
		return refs{}, fmt.Errorf("unbalanced (")
	}
	if len(r.selectors) == 0 {
		return refs{}, fmt.Errorf("no metric")
	}
	return r, nil
}

func TestParsePromQL(t *testing.T) {
	for _, tc := range []struct {
		expr      string
		selectors []selector
		grouping  []string
	}{
		{`up`, []selector{{name: "up"}}, nil},
		{`sum by (zone) (rate(a_total{server=~"$server", rcode="SERVFAIL"}[$__rate_interval])) / on (instance) group_left(version) b`,
			[]selector{{"a_total", []string{"server", "rcode"}}, {name: "b"}}, []string{"zone", "instance", "version"}},
		{"histogram_quantile(0.99, sum(rate(x_bucket{a='1'}[5m:1m] offset 1h)) without (pod)) > bool 1e-3 # by (nope)",
			[]selector{{"x_bucket", []string{"a"}}}, []string{"pod"}},
		{`SUM(label_replace(y{b!~"x|}"}, "dst", "$1", "src", "(.*)")) BY (dst) unless {__name__="z", c="1"}`,
			[]selector{{"y", []string{"b"}}, {"z", []string{"c"}}}, []string{"dst"}},
		{`time() - process_start_time_seconds`, []selector{{name: "process_start_time_seconds"}}, nil},
		{"a > 0\n  or (b unless c offset 30m)", []selector{{name: "a"}, {name: "b"}, {name: "c"}}, nil},
	} {
		r, err := parsePromQL(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if !reflect.DeepEqual(r.selectors, tc.selectors) || !reflect.DeepEqual(r.grouping, tc.grouping) {
			t.Errorf("%s:\n got %+v %v\nwant %+v %v", tc.expr, r.selectors, r.grouping, tc.selectors, tc.grouping)
		}
	}
	for _, bad := range []string{
		`rate(x[5m]`, `x{a="1"`, `x{a=1}`, `{a="1"}`, `sum by zone (x)`, `rte(x[5m])`, `x[$interval]`, `1 + 2`, `x)`,
	} {
		if r, err := parsePromQL(bad); err == nil {
			t.Errorf("%s: no error, got %+v", bad, r)
		}
	}
}
