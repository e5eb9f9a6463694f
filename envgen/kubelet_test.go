package envgen

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

// This file is an independent model of kubelet (pkg/kubelet/envvars and
// makeEnvironmentVariables in pkg/kubelet/kubelet_pods.go), written from
// the API types and not from this package, to judge the webhook by: a
// container's process environment must come out the same with and without
// the patch.

// kubeletServiceEnv is getServiceEnvVarMap.
func kubeletServiceEnv(services []corev1.Service, ns string, links bool) map[string]string {
	byName := map[string]*corev1.Service{}
	for i := range services {
		s := &services[i]
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		if s.Namespace == "default" && s.Name == "kubernetes" {
			if _, ok := byName[s.Name]; !ok {
				byName[s.Name] = s
			}
		} else if s.Namespace == ns && links {
			byName[s.Name] = s
		}
	}
	m := map[string]string{}
	for _, s := range byName {
		up := func(x string) string { return strings.ToUpper(strings.ReplaceAll(x, "-", "_")) }
		p := up(s.Name)
		m[p+"_SERVICE_HOST"] = s.Spec.ClusterIP
		m[p+"_SERVICE_PORT"] = strconv.Itoa(int(s.Spec.Ports[0].Port))
		for _, sp := range s.Spec.Ports {
			if sp.Name != "" {
				m[p+"_SERVICE_PORT_"+up(sp.Name)] = strconv.Itoa(int(sp.Port))
			}
		}
		for i, sp := range s.Spec.Ports {
			proto := string(sp.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			url := fmt.Sprintf("%s://%s", strings.ToLower(proto), net.JoinHostPort(s.Spec.ClusterIP, strconv.Itoa(int(sp.Port))))
			if i == 0 {
				m[p+"_PORT"] = url
			}
			pp := fmt.Sprintf("%s_PORT_%d_%s", p, sp.Port, strings.ToUpper(proto))
			m[pp] = url
			m[pp+"_PROTO"] = strings.ToLower(proto)
			m[pp+"_PORT"] = strconv.Itoa(int(sp.Port))
			m[pp+"_ADDR"] = s.Spec.ClusterIP
		}
	}
	return m
}

// kubeletEnv is makeEnvironmentVariables for one container: envFrom, then
// env with $(VAR) expansion against what came before and the service
// variables, then the service variables the container did not set.
// withServices false models a kubelet that adds no service variables, to
// show what the patch alone provides.
func kubeletEnv(pod *corev1.Pod, c *corev1.Container, services []corev1.Service, configMaps map[string]map[string]string, withServices bool) (map[string]string, error) {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	serviceEnv := map[string]string{}
	if withServices {
		serviceEnv = kubeletServiceEnv(services, pod.Namespace, links)
	}
	tmp := map[string]string{}
	for _, f := range c.EnvFrom {
		if f.ConfigMapRef == nil {
			continue
		}
		data, ok := configMaps[f.ConfigMapRef.Name]
		if !ok {
			if f.ConfigMapRef.Optional != nil && *f.ConfigMapRef.Optional {
				continue
			}
			return nil, fmt.Errorf("configmap %s missing", f.ConfigMapRef.Name)
		}
		for k, v := range data {
			tmp[f.Prefix+k] = v
		}
	}
	mapping := func(name string) string {
		if v, ok := tmp[name]; ok {
			return v
		}
		if v, ok := serviceEnv[name]; ok {
			return v
		}
		return "$(" + name + ")"
	}
	for _, e := range c.Env {
		val := e.Value
		if val != "" {
			val = expand(val, mapping)
		} else if e.ValueFrom != nil {
			switch {
			case e.ValueFrom.FieldRef != nil:
				val = "field:" + e.ValueFrom.FieldRef.FieldPath
			case e.ValueFrom.ConfigMapKeyRef != nil:
				ref := e.ValueFrom.ConfigMapKeyRef
				v, ok := configMaps[ref.Name][ref.Key]
				if !ok {
					if ref.Optional != nil && *ref.Optional {
						continue
					}
					return nil, fmt.Errorf("configmap key %s/%s missing", ref.Name, ref.Key)
				}
				val = v
			}
		}
		tmp[e.Name] = val
	}
	for k, v := range serviceEnv {
		if _, ok := tmp[k]; !ok {
			tmp[k] = v
		}
	}
	return tmp, nil
}

// expand is kubelet's $(VAR) expansion: $$ is a literal $, an unclosed or
// unknown reference stays as written.
func expand(in string, mapping func(string) string) string {
	var b bytes.Buffer
	last := 0
	for i := 0; i < len(in); i++ {
		if in[i] != '$' || i+1 >= len(in) {
			continue
		}
		b.WriteString(in[last:i])
		rest := in[i+1:]
		r, size := utf8.DecodeRuneInString(rest)
		switch {
		case r == '$':
			b.WriteString("$")
			i += size
		case r == '(':
			end := strings.IndexByte(rest[1:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
			} else {
				b.WriteString(mapping(rest[1 : 1+end]))
				i += end + 2
			}
		default:
			b.WriteString("$" + string(r))
			i += size
		}
		last = i + 1
	}
	return b.String() + in[last:]
}
