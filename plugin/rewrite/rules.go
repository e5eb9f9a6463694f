package rewrite

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// rule is one rewrite directive ready to run.
type rule struct {
	c    *config.Rewrite
	cont bool
	// static are the response rules that do not depend on the query: a
	// suffix rule's auto answer, and the answer name and value options.
	static []response
}

func newRule(c *config.Rewrite) (rule, error) {
	r := rule{c: c, cont: c.Continue}
	if c.Field == "name" && c.Match == "suffix" && c.Auto {
		m := suffixMap{from: c.To, to: c.From}
		r.static = append(r.static, nameRule{m}, valueRule{m})
	}
	for _, a := range c.Answers {
		m := regexMap{re: a.Regexp, to: a.To}
		if a.Value {
			r.static = append(r.static, valueRule{m})
		} else {
			r.static = append(r.static, nameRule{m})
		}
	}
	return r, nil
}

// apply rewrites st's query when the rule matches it, and returns the
// response rules the reply needs.
func (r *rule) apply(st *plugin.State) ([]response, bool) {
	c := r.c
	switch c.Field {
	case "name":
		asked := st.Req.Question[0].Name
		to, ok := r.rename(st.Name)
		if !ok {
			return nil, false
		}
		st.SetQuestion(to, st.Type, st.Class)
		if !c.Auto || c.Match == "suffix" {
			return r.static, true
		}
		m := remap{from: to, to: asked}
		return append([]response{nameRule{m}, valueRule{m}}, r.static...), true
	case "type":
		if st.Type != c.FromType {
			return nil, false
		}
		st.SetQuestion(st.Req.Question[0].Name, c.ToType, st.Class)
		return nil, true
	case "class":
		if st.Class != c.FromClass {
			return nil, false
		}
		st.SetQuestion(st.Req.Question[0].Name, st.Type, c.ToClass)
		return nil, true
	case "ttl":
		if !r.matches(st.Name) {
			return nil, false
		}
		return []response{ttlRule{c.MinTTL, c.MaxTTL}}, true
	case "rcode":
		if !r.matches(st.Name) {
			return nil, false
		}
		return []response{rcodeRule{c.FromRcode, c.ToRcode}}, true
	}
	return nil, false
}

// rename returns the new name of the lower-case name, when the rule
// matches it.
func (r *rule) rename(name string) (string, bool) {
	c := r.c
	switch c.Match {
	case "exact":
		return c.To, name == c.From
	case "prefix":
		after, ok := strings.CutPrefix(name, c.From)
		return c.To + after, ok
	case "suffix":
		before, ok := strings.CutSuffix(name, c.From)
		return before + c.To, ok
	case "substring":
		return strings.ReplaceAll(name, c.From, c.To), strings.Contains(name, c.From)
	case "regex":
		groups := c.Regexp.FindStringSubmatch(name)
		if groups == nil {
			return "", false
		}
		return expand(c.To, groups), true
	}
	return "", false
}

// matches reports whether a ttl or rcode rule's name matches name.
func (r *rule) matches(name string) bool {
	c := r.c
	switch c.Match {
	case "exact":
		return name == c.From
	case "prefix":
		return strings.HasPrefix(name, c.From)
	case "suffix":
		return strings.HasSuffix(name, c.From)
	case "substring":
		return strings.Contains(name, c.From)
	case "regex":
		return c.Regexp.MatchString(name)
	}
	return false
}

var groupRef = regexp.MustCompile(`\{([0-9]+)\}`)

// expand replaces {N} in tmpl by group N of a match (empty when the
// expression has no such group).
func expand(tmpl string, groups []string) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	return groupRef.ReplaceAllStringFunc(tmpl, func(ref string) string {
		n, _ := strconv.Atoi(ref[1 : len(ref)-1])
		if n < len(groups) {
			return groups[n]
		}
		return ref
	})
}

// regexMap replaces a whole name that the expression matches by to, its
// {N} filled in from the match: the answer name and answer value options.
type regexMap struct {
	re *regexp.Regexp
	to string
}

func (r regexMap) mapName(s string) string {
	groups := r.re.FindStringSubmatch(s)
	if groups == nil {
		return s
	}
	return expand(r.to, groups)
}
