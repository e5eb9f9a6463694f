package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/forward"
	"github.com/svcdisc/svcdisc/metrics"
	"github.com/svcdisc/svcdisc/zones"
)

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

// exported returns the series names svcdisc exports, each with its label
// names (histograms as _bucket with le, _sum and _count; summaries as the
// name with quantile, _sum and _count), plus Prometheus's own up. It builds
// the real registry of `svcdisc serve` and of `svcdisc webhook` (one
// registry here: their names do not clash) and gives every metric a sample.
func exported(t *testing.T) map[string][]string {
	t.Helper()
	m := metrics.New(metrics.Options{Version: "test"})
	m.Webhook(func() int { return 1 }, func() uint64 { return 1 })

	z := zones.New(zones.Options{Zones: []string{"cluster.local.", "in-addr.arpa."}})
	m.Registry.MustRegister(metrics.NewZoneCollector(":53", []string{"cluster.local.", "in-addr.arpa."}, z))
	m.Registry.MustRegister(m.CacheCollector("dns://:53", []string{"cluster.local."}, cache.New(cache.Options{})))
	fw, err := forward.New(forward.Options{Upstreams: []string{"192.0.2.53:53"}})
	if err != nil {
		t.Fatal(err)
	}
	m.Registry.MustRegister(m.ForwardCollector(fw))

	m.Meters("dns://:53")(nil, "cluster.local.", dns.TypeA, dns.RcodeSuccess, "kubernetes", "udp", false).Observe(40, 1232, 100, false, time.Millisecond)
	m.ObserveUpstream("192.0.2.53:53", dns.RcodeSuccess, time.Millisecond, nil)
	m.RateLimited()(true)
	m.CountReload("failed")
	m.AutoPath([]string{"dns://:53"})("completed")
	m.SearchExpansions([]string{"dns://:53"})()

	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{"up": slices.Clone(targetLabels)}
	for _, f := range families {
		if len(f.GetMetric()) == 0 {
			t.Fatalf("%s has no sample: give it one in exported", f.GetName())
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		labels = append(labels, targetLabels...)
		name := f.GetName()
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[name+"_bucket"] = append(slices.Clone(labels), "le")
			out[name+"_sum"] = labels
			out[name+"_count"] = labels
		case dto.MetricType_SUMMARY:
			out[name] = append(slices.Clone(labels), "quantile")
			out[name+"_sum"] = labels
			out[name+"_count"] = labels
		default:
			out[name] = labels
		}
	}
	// The registry cannot list what is registered, only what it gathers: a
	// metric without a sample would be missing above. The root README lists
	// every metric; each must be here.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(readme, []byte("\n## Metrics\n"))
	if i < 0 {
		t.Fatal("README.md has no Metrics section")
	}
	section, _, _ := strings.Cut(string(readme[i+1:]), "\n## ")
	documented := regexp.MustCompile(`svcdisc_[a-z_]+`).FindAllString(section, -1)
	if len(documented) < 20 {
		t.Fatalf("README.md's Metrics section names %d metrics", len(documented))
	}
	for _, name := range documented {
		if out[name] == nil && out[name+"_bucket"] == nil {
			t.Errorf("README.md lists %s, which exported does not gather: give it a sample", name)
		}
	}
	return out
}

// checkRefs checks the metric and label names expr uses against exp, and
// returns the label names its result may carry.
func checkRefs(expr string, exp map[string][]string) (labels []string, errs []error) {
	r, err := parsePromQL(expr)
	if err != nil {
		return nil, []error{err}
	}
	known := map[string]bool{}
	for _, s := range r.selectors {
		if !strings.HasPrefix(s.name, "svcdisc_") && !strings.HasPrefix(s.name, "go_") &&
			!strings.HasPrefix(s.name, "process_") && s.name != "up" {
			errs = append(errs, fmt.Errorf("metric %s: not an svcdisc_, go_ or process_ name", s.name))
		}
		have, ok := exp[s.name]
		if !ok {
			errs = append(errs, fmt.Errorf("metric %s: svcdisc does not export it", s.name))
			continue
		}
		for _, l := range have {
			known[l] = true
		}
		for _, l := range s.labels {
			if !slices.Contains(have, l) {
				errs = append(errs, fmt.Errorf("metric %s has no label %q (it has %v)", s.name, l, have))
			}
		}
	}
	for _, l := range r.grouping {
		if !known[l] {
			errs = append(errs, fmt.Errorf("grouping label %q is on none of the metrics of the expression", l))
		}
	}
	for l := range known {
		labels = append(labels, l)
	}
	return labels, errs
}

// ---------------------------------------------------------------- dashboard

type target struct {
	RefID        string `json:"refId"`
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	Datasource   struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
}

type panel struct {
	ID      int      `json:"id"`
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string `json:"name"`
			Expr       string `json:"expr"`
			TextFormat string `json:"textFormat"`
		} `json:"list"`
	} `json:"annotations"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	return d
}

// queries are the dashboard's PromQL expressions, each with a name for
// messages and its legend (or text) format.
type query struct{ where, expr, legend string }

func (d dashboard) queries() []query {
	var qs []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				qs = append(qs, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr, tg.LegendFormat})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			qs = append(qs, query{fmt.Sprintf("annotation %q", a.Name), a.Expr, a.TextFormat})
		}
	}
	return qs
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard without uid or title")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a current dashboard (≥ 36)", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" || vars["server"] != "query" {
		t.Errorf("template variables %v: want datasource (datasource), instance and server (query)", vars)
	}
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			var q string
			if json.Unmarshal(v.Query, &q) != nil || q != "prometheus" {
				t.Errorf("variable %s: query %s, want prometheus", v.Name, v.Query)
			}
		}
	}

	ids := map[int]bool{}
	var walk func([]panel, bool)
	walk = func(ps []panel, nested bool) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %d %q: bad gridPos %+v", p.ID, p.Title, p.GridPos)
			}
			if p.Type == "row" {
				if nested {
					t.Errorf("row %q inside a row", p.Title)
				}
				walk(p.Panels, true)
				continue
			}
			if p.Title == "" {
				t.Errorf("panel %d without a title", p.ID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %d %q has no target", p.ID, p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %d %q target %s: no expr", p.ID, p.Title, tg.RefID)
				}
				if tg.Datasource.UID != "${datasource}" {
					t.Errorf("panel %d %q target %s: datasource %q, want ${datasource}", p.ID, p.Title, tg.RefID, tg.Datasource.UID)
				}
			}
		}
	}
	walk(d.Panels, false)
	if len(ids) < 10 {
		t.Errorf("only %d panels", len(ids))
	}
}

var legendLabelRE = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// TestDashboardMetrics checks every metric and label name of the dashboard's
// queries against the registry, and that each svcdisc_ metric is shown.
func TestDashboardMetrics(t *testing.T) {
	exp := exported(t)
	d := readDashboard(t)
	used := map[string]bool{}
	for _, q := range d.queries() {
		labels, errs := checkRefs(q.expr, exp)
		for _, err := range errs {
			t.Errorf("%s: %v\n\t%s", q.where, err, q.expr)
		}
		for _, m := range legendLabelRE.FindAllStringSubmatch(q.legend, -1) {
			if len(errs) == 0 && !slices.Contains(labels, m[1]) {
				t.Errorf("%s: legend uses label %q, which the expression does not have", q.where, m[1])
			}
		}
		if r, err := parsePromQL(q.expr); err == nil {
			for _, s := range r.selectors {
				used[s.name] = true
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Errorf("variable %s: query %s: %v", v.Name, v.Query, err)
			continue
		}
		m := labelValuesRE.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		labels, errs := checkRefs(m[1], exp)
		for _, err := range errs {
			t.Errorf("variable %s: %v", v.Name, err)
		}
		if len(errs) == 0 && !slices.Contains(labels, m[2]) {
			t.Errorf("variable %s: %s has no label %q", v.Name, m[1], m[2])
		}
	}
	// Every svcdisc metric has a panel: a new one needs a panel too.
	var missing []string
	for name := range exp {
		if !strings.HasPrefix(name, "svcdisc_") {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !used[name] && !used[base+"_bucket"] && !used[base+"_sum"] && !used[base+"_count"] && !used[base] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("svcdisc metrics no dashboard panel shows: %v", missing)
	}
}

// ---------------------------------------------------------------- rules

type rule struct {
	Alert         string            `json:"alert"`
	Record        string            `json:"record"`
	Expr          string            `json:"expr"`
	For           string            `json:"for"`
	KeepFiringFor string            `json:"keep_firing_for"`
	Labels        map[string]string `json:"labels"`
	Annotations   map[string]string `json:"annotations"`
}

type ruleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval"`
	Rules    []rule `json:"rules"`
}

type ruleFile struct {
	Groups []ruleGroup `json:"groups"`
}

type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec ruleFile `json:"spec"`
}

func readYAML(t *testing.T, path string, strict any) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, strict); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var generic any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return generic
}

func TestRulesFilesAgree(t *testing.T) {
	var rf ruleFile
	plain := readYAML(t, "rules.yaml", &rf)
	var pr prometheusRule
	op := readYAML(t, "prometheusrule.yaml", &pr)
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || pr.Metadata.Name == "" {
		t.Errorf("prometheusrule.yaml: %s %s %q, want a named monitoring.coreos.com/v1 PrometheusRule", pr.APIVersion, pr.Kind, pr.Metadata.Name)
	}
	if len(plain.(map[string]any)) != 1 {
		t.Errorf("rules.yaml: keys besides groups")
	}
	spec, _ := op.(map[string]any)["spec"].(map[string]any)
	if len(spec) != 1 {
		t.Errorf("prometheusrule.yaml: spec has keys besides groups")
	}
	if !reflect.DeepEqual(plain.(map[string]any)["groups"], spec["groups"]) {
		t.Error("rules.yaml groups and prometheusrule.yaml spec.groups differ")
	}
	if !reflect.DeepEqual(rf.Groups, pr.Spec.Groups) {
		t.Error("rules.yaml and prometheusrule.yaml differ")
	}
}

var annotationLabelRE = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

func TestRules(t *testing.T) {
	exp := exported(t)
	var rf ruleFile
	readYAML(t, "rules.yaml", &rf)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Groups) == 0 {
		t.Fatal("rules.yaml has no group")
	}
	alerts := map[string]bool{}
	groups := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rule", g.Name)
		}
		for i, r := range g.Rules {
			where := fmt.Sprintf("group %s rule %d %s", g.Name, i, r.Alert)
			if r.Alert == "" || r.Record != "" {
				t.Errorf("%s: want an alerting rule", where)
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("%s: alert name repeated", where)
			}
			alerts[r.Alert] = true
			if r.For == "" {
				t.Errorf("%s: no for", where)
			} else if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", where, r.For, err)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q, want critical, warning or info", where, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want summary and description annotations", where)
			}
			labels, errs := checkRefs(r.Expr, exp)
			for _, err := range errs {
				t.Errorf("%s: %v\n\t%s", where, err, r.Expr)
			}
			for _, text := range r.Annotations {
				for _, m := range annotationLabelRE.FindAllStringSubmatch(text, -1) {
					if len(errs) == 0 && !slices.Contains(labels, m[1]) {
						t.Errorf("%s: annotation uses $labels.%s, which the expression does not have", where, m[1])
					}
				}
			}
			if !bytes.Contains(readme, []byte("`"+r.Alert+"`")) {
				t.Errorf("%s: README.md does not list it", where)
			}
		}
	}
}

// ---------------------------------------------------------------- promtool

// promtool returns promtool's path, or skips the test when it is not
// installed (Debian: apt-get install prometheus) unless
// SVCDISC_REQUIRE_PROMTOOL=1.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SVCDISC_REQUIRE_PROMTOOL") == "1" {
			t.Fatal("promtool not found and SVCDISC_REQUIRE_PROMTOOL=1 (Debian: apt-get install --no-install-recommends prometheus)")
		}
		t.Skip("promtool not found (Debian: apt-get install --no-install-recommends prometheus); SVCDISC_REQUIRE_PROMTOOL=1 makes this a failure")
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", "rules.yaml")
}

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, "test", "rules", "rules_test.yaml")
}

// TestPromtoolDashboardQueries has promtool parse every query of the
// dashboard, as recording rules of a scratch rules file.
func TestPromtoolDashboardQueries(t *testing.T) {
	promtool(t)
	d := readDashboard(t)
	var rules []map[string]string
	for i, q := range d.queries() {
		expr := q.expr
		for _, v := range grafanaIntervals {
			expr = strings.ReplaceAll(expr, v, "5m")
		}
		rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard:query_%d", i), "expr": expr})
	}
	data, err := json.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", path)
}
