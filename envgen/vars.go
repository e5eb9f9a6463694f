package envgen

import (
	"cmp"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/svcdisc/svcdisc/zones"
)

// Var is one environment variable.
type Var struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// masterService is the Service of the default namespace kubelet gives every
// Pod, even with enableServiceLinks false: in-cluster clients find the API
// server through it.
const (
	masterNamespace = "default"
	masterService   = "kubernetes"
)

// hasClusterIP is kubelet's IsServiceIPSet: headless and ExternalName
// Services have no variables.
func hasClusterIP(s *zones.Service) bool {
	return s.Type == zones.ClusterIP && len(s.ClusterIPs) > 0
}

// clusterIP is spec.clusterIP as kubelet reads it: the primary family's
// address, as written.
func clusterIP(s *zones.Service) string {
	if text := s.ClusterIPText(); text != "" {
		return text
	}
	return s.ClusterIPs[0].String()
}

// envName is kubelet's makeEnvVariableName: upper case, '-' as '_'. Like
// kubelet, it leaves a leading digit alone.
func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// ServiceVars returns the variables of one Service in kubelet's order (its
// envvars.FromServices): host, first port, named ports, then the Docker
// links set per port. A Service without a cluster IP has none. A Service
// without ports, which the API server does not accept, gets only the host.
func ServiceVars(s *zones.Service) []Var {
	if !hasClusterIP(s) {
		return nil
	}
	prefix := envName(s.Name)
	ip := clusterIP(s)
	out := make([]Var, 0, 2+len(s.Ports)*6)
	out = append(out, Var{prefix + "_SERVICE_HOST", ip})
	if len(s.Ports) == 0 {
		return out
	}
	portVar := prefix + "_SERVICE_PORT"
	out = append(out, Var{portVar, strconv.Itoa(int(s.Ports[0].Port))})
	for _, p := range s.Ports {
		if p.Name != "" {
			out = append(out, Var{portVar + "_" + envName(p.Name), strconv.Itoa(int(p.Port))})
		}
	}
	for i, p := range s.Ports {
		proto := strings.ToLower(cmp.Or(p.Protocol, "tcp"))
		port := strconv.Itoa(int(p.Port))
		url := proto + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			out = append(out, Var{prefix + "_PORT", url})
		}
		pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		out = append(out,
			Var{pp, url},
			Var{pp + "_PROTO", proto},
			Var{pp + "_PORT", port},
			Var{pp + "_ADDR", ip},
		)
	}
	return out
}

// Group is the variables one Service contributes to a set.
type Group struct {
	Namespace, Service string
	Vars               []Var
	// enc is each variable encoded as a Kubernetes EnvVar, made once per set
	// so that building a patch is copying bytes.
	enc   [][]byte
	bytes int
	start int // position of the first variable in the set
}

// Set is the service variables of one kind of Pod, grouped by Service, with
// every name appearing once.
type Set struct {
	Groups []Group
	n      int
	// index maps a variable name to its position in the set, so a
	// container's few env entries are looked up in the set rather than
	// every variable of the set in the container.
	index map[string]int
}

// Len is the number of variables in the set.
func (s *Set) Len() int { return s.n }

// Vars flattens the set in order.
func (s *Set) Vars() []Var {
	out := make([]Var, 0, s.n)
	for _, g := range s.Groups {
		out = append(out, g.Vars...)
	}
	return out
}

// Map is the set as kubelet holds it, name to value.
func (s *Set) Map() map[string]string {
	m := make(map[string]string, s.n)
	for _, g := range s.Groups {
		for _, v := range g.Vars {
			m[v.Name] = v.Value
		}
	}
	return m
}

// newSet builds a set from Services keyed by name, as kubelet's
// getServiceEnvVarMap does: one Service per name. The order is by Service
// name, so the output is stable (kubelet's is a map's). Should two Services
// produce the same variable name, the later one's value is kept, in the
// later one's group, as when kubelet writes its map.
func newSet(svcs []*zones.Service) *Set {
	svcs = slices.Clone(svcs)
	slices.SortFunc(svcs, func(a, b *zones.Service) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Namespace, b.Namespace))
	})
	groups := make([]Group, 0, len(svcs))
	owner := make(map[string]int) // variable name → group index
	for _, s := range svcs {
		vars := ServiceVars(s)
		if len(vars) == 0 {
			continue
		}
		gi := len(groups)
		for _, v := range vars {
			if prev, ok := owner[v.Name]; ok && prev < gi {
				groups[prev].Vars = slices.DeleteFunc(groups[prev].Vars, func(o Var) bool { return o.Name == v.Name })
			}
			owner[v.Name] = gi
		}
		// A name repeated inside one Service (port names colliding after
		// mangling) keeps its last value.
		vars = dedupeLast(vars)
		groups = append(groups, Group{Namespace: s.Namespace, Service: s.Name, Vars: vars})
	}
	set := &Set{Groups: groups[:0], index: make(map[string]int, len(owner))}
	for _, g := range groups {
		if len(g.Vars) == 0 {
			continue
		}
		g.start = set.n
		g.enc = make([][]byte, len(g.Vars))
		for i, v := range g.Vars {
			b, _ := json.Marshal(v) // strings only: cannot fail
			g.enc[i] = b
			g.bytes += len(v.Name) + len(v.Value)
			set.index[v.Name] = set.n + i
		}
		set.n += len(g.Vars)
		set.Groups = append(set.Groups, g)
	}
	return set
}

func dedupeLast(vars []Var) []Var {
	seen := make(map[string]int, len(vars))
	out := vars[:0:0]
	for _, v := range vars {
		if i, ok := seen[v.Name]; ok {
			out[i].Value = v.Value
			continue
		}
		seen[v.Name] = len(out)
		out = append(out, v)
	}
	return out
}
