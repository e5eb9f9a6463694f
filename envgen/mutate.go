package envgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The Pod annotations the webhook obeys.
const (
	// AnnotationServices selects the Services whose variables a Pod gets, as
	// a comma-separated list of "name" (the Pod's namespace) or
	// "name.namespace". With it the webhook turns enableServiceLinks off, so
	// the selection is all the Pod gets besides the default namespace's
	// kubernetes Service, which kubelet always adds.
	AnnotationServices = "svcdisc.io/services"
	// AnnotationInject set to "false" leaves the Pod alone. It is honoured
	// as a label as well.
	AnnotationInject = "svcdisc.io/inject"
)

// Limits bound what one container receives. Kubelet adds its variables at
// container start and they cost nothing in the API; ours are stored in the
// Pod object, which etcd caps at 1.5 MiB.
type Limits struct {
	MaxVars  int // variables per container; 0 means no limit
	MaxBytes int // bytes of names and values per container; 0 means no limit
}

// DefaultLimits keep a Pod of several containers well under etcd's object
// size limit.
var DefaultLimits = Limits{MaxVars: 1000, MaxBytes: 64 << 10}

// Mutator computes the patch that gives a Pod its service variables.
type Mutator struct {
	Store  *Store
	Limits Limits
}

// Result is the outcome of one mutation.
type Result struct {
	// Patch is an RFC 6902 JSON Patch, nil when the Pod needs no change.
	Patch []byte
	// Warnings say why variables a Pod might expect were not injected.
	Warnings []string
	// Injected counts the variables added over all containers.
	Injected int
	// OptedOut is set when the Pod asked to be left alone.
	OptedOut bool
}

// rawPod reads the containers' env lists without interpreting them, so the
// entries a patch puts back are exactly what was sent, fields unknown to
// this build included.
type rawPod struct {
	hasSpec bool
	Spec    struct {
		Containers     []rawContainer
		InitContainers []rawContainer
	}
}

type rawContainer struct {
	Env []json.RawMessage `json:"env"`
}

// decodeRawPod reads spec, containers and initContainers by their exact
// keys, as a JSON Patch path names them (encoding/json matches struct
// fields in any letter case).
func decodeRawPod(raw []byte) (rawPod, error) {
	var rp rawPod
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return rp, err
	}
	specRaw, ok := top["spec"]
	if !ok || bytes.Equal(specRaw, []byte("null")) {
		return rp, nil
	}
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(specRaw, &spec); err != nil {
		return rp, err
	}
	rp.hasSpec = true
	for key, dst := range map[string]*[]rawContainer{"containers": &rp.Spec.Containers, "initContainers": &rp.Spec.InitContainers} {
		if v, ok := spec[key]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return rp, err
			}
		}
	}
	return rp, nil
}

// Mutate returns the patch for a Pod being created in namespace ns; raw is
// the Pod as JSON. The namespace is the request's: a Pod object need not
// carry one.
//
// Each container (init containers too) gets, ahead of its own entries, the
// variables of the set it does not define itself. A name the container
// sets in env is never touched (even one whose optional source may turn
// out missing, which kubelet then fills itself); an envFrom source may set
// any name that
// starts with its prefix, and its keys are not visible here, so those names
// are left out too. Kubelet resolves $(VAR) references in env against the
// entries before them and then against its own service variables; ours come
// first and carry the same values, so every reference resolves as before.
func (m *Mutator) Mutate(ns string, raw []byte) (Result, error) {
	var pod corev1.Pod
	if err := json.Unmarshal(raw, &pod); err != nil {
		return Result{}, fmt.Errorf("decode pod: %w", err)
	}
	rp, err := decodeRawPod(raw)
	if err != nil {
		return Result{}, fmt.Errorf("decode pod: %w", err)
	}
	if len(rp.Spec.Containers) != len(pod.Spec.Containers) || len(rp.Spec.InitContainers) != len(pod.Spec.InitContainers) {
		return Result{}, fmt.Errorf("decode pod: containers do not line up (keys in unusual letter case?)")
	}
	var res Result
	// The opt-out is read as a label too: a label is what a webhook's
	// objectSelector can match, so the API server need not call us at all.
	v, ok := pod.Annotations[AnnotationInject]
	if !ok {
		v, ok = pod.Labels[AnnotationInject]
	}
	if ok {
		inject, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("svcdisc: annotation %s=%q is not a boolean; injecting", AnnotationInject, v))
		} else if !inject {
			res.OptedOut = true
			return res, nil
		}
	}

	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	var set *Set
	var ops []patchOp
	selected := false
	if v, ok := pod.Annotations[AnnotationServices]; ok {
		selected = true
		refs, bad := ParseRefs(v, ns)
		for _, b := range bad {
			res.Warnings = append(res.Warnings, fmt.Sprintf("svcdisc: %s: %q is not name or name.namespace", AnnotationServices, b))
		}
		var missing, clashes []Ref
		set, missing, clashes = m.Store.Select(refs)
		for _, r := range missing {
			res.Warnings = append(res.Warnings, fmt.Sprintf("svcdisc: service %s not found or has no cluster IP; no variables for it", r))
		}
		for _, r := range clashes {
			res.Warnings = append(res.Warnings, fmt.Sprintf("svcdisc: service %s skipped: another selected service has the same name", r))
		}
		if links && rp.hasSpec {
			ops = append(ops, patchOp{path: "/spec/enableServiceLinks", value: []byte("false")})
		}
		links = false
	} else {
		set = m.Store.Env(ns, links)
	}

	for _, c := range []struct {
		field string
		typed []corev1.Container
		raw   []rawContainer
	}{
		{"initContainers", pod.Spec.InitContainers, rp.Spec.InitContainers},
		{"containers", pod.Spec.Containers, rp.Spec.Containers},
	} {
		for i := range c.typed {
			add, warn := m.forContainer(set, &c.typed[i], selected)
			res.Warnings = append(res.Warnings, warn...)
			if len(add) == 0 {
				continue
			}
			res.Injected += len(add)
			var b bytes.Buffer
			n := 2
			for _, e := range add {
				n += len(e) + 1
			}
			for _, e := range c.raw[i].Env {
				n += len(e) + 1
			}
			b.Grow(n)
			b.WriteByte('[')
			for j, e := range add {
				if j > 0 {
					b.WriteByte(',')
				}
				b.Write(e)
			}
			for _, e := range c.raw[i].Env {
				b.WriteByte(',')
				b.Write(e)
			}
			b.WriteByte(']')
			// "add" replaces a member that exists (RFC 6902 4.1), so one op
			// serves a container with and without an env list.
			ops = append(ops, patchOp{path: fmt.Sprintf("/spec/%s/%d/env", c.field, i), value: b.Bytes()})
		}
	}
	if len(ops) > 0 {
		res.Patch = encodePatch(ops)
	}
	return res, nil
}

// forContainer picks the variables of set that container c should get, as
// encoded EnvVars. strict says kubelet will not add what is left out (the
// Pod selected its Services), so leaving something out deserves a warning;
// otherwise the set is kubelet's own and kubelet fills any gap.
func (m *Mutator) forContainer(set *Set, c *corev1.Container, strict bool) (add [][]byte, warnings []string) {
	// defined marks the set's variables the container names in env.
	var defined []bool
	for _, e := range c.Env {
		if i, ok := set.index[e.Name]; ok {
			if defined == nil {
				defined = make([]bool, set.n)
			}
			defined[i] = true
		}
	}
	isDefined := func(i int) bool { return defined != nil && defined[i] }
	var prefixes []string
	for _, f := range c.EnvFrom {
		if f.ConfigMapRef != nil || f.SecretRef != nil {
			prefixes = append(prefixes, f.Prefix)
		}
	}
	shadowed := func(name string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	// Variables already present count against the limits as well as the
	// ones added, so that a second pass over the mutated Pod stops where the
	// first one did.
	var nvars, nbytes, fromEnvFrom, capped int
	// wanted says variable vi of g is neither named in env nor possibly
	// set by envFrom.
	wanted := func(g *Group, vi int) bool {
		return !isDefined(g.start+vi) && (len(prefixes) == 0 || !shadowed(g.Vars[vi].Name))
	}
	for gi := range set.Groups {
		g := &set.Groups[gi]
		used, size, hidden := len(g.Vars), g.bytes, 0
		if len(prefixes) > 0 {
			for vi, v := range g.Vars {
				if !isDefined(g.start+vi) && shadowed(v.Name) {
					hidden++
					used--
					size -= len(v.Name) + len(v.Value)
				}
			}
		}
		fromEnvFrom += hidden
		if capped > 0 || (m.Limits.MaxVars > 0 && nvars+used > m.Limits.MaxVars) ||
			(m.Limits.MaxBytes > 0 && nbytes+size > m.Limits.MaxBytes) {
			for vi := range g.Vars {
				if wanted(g, vi) {
					capped++
				}
			}
			continue
		}
		nvars += used
		nbytes += size
		for vi := range g.Vars {
			if wanted(g, vi) {
				add = append(add, g.enc[vi])
			}
		}
	}
	if capped > 0 {
		hint := ""
		if !strict {
			hint = "; kubelet adds the rest itself"
		}
		warnings = append(warnings, fmt.Sprintf("svcdisc: container %q: %d service variables not injected: limit of %d variables or %d bytes reached%s",
			c.Name, capped, m.Limits.MaxVars, m.Limits.MaxBytes, hint))
	}
	if fromEnvFrom > 0 && strict {
		warnings = append(warnings, fmt.Sprintf("svcdisc: container %q: %d service variables not injected: envFrom may define them",
			c.Name, fromEnvFrom))
	}
	return add, warnings
}

// ParseRefs reads the services annotation: comma-separated "name" or
// "name.namespace", the bare form in namespace ns. Entries that are neither
// are returned in bad.
func ParseRefs(v, ns string) (refs []Ref, bad []string) {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, rns, dotted := strings.Cut(f, ".")
		if !dotted {
			rns = ns
		}
		if !isLabel(name) || !isLabel(rns) {
			bad = append(bad, f)
			continue
		}
		refs = append(refs, Ref{Namespace: rns, Name: name})
	}
	return refs, bad
}

// isLabel reports whether s is an RFC 1123 label, which Service and
// namespace names are.
func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// patchOp is one JSON Patch "add"; value is JSON.
type patchOp struct {
	path  string
	value []byte
}

func encodePatch(ops []patchOp) []byte {
	var b bytes.Buffer
	n := 2
	for _, op := range ops {
		n += len(op.path) + len(op.value) + 40
	}
	b.Grow(n)
	b.WriteByte('[')
	for i, op := range ops {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"op":"add","path":`)
		p, _ := json.Marshal(op.path)
		b.Write(p)
		b.WriteString(`,"value":`)
		b.Write(op.value)
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes()
}
