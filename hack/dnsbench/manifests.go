package main

import (
	"fmt"
	"io"
	"strings"
)

// writeManifests writes the cluster as one multi-document YAML stream:
// Namespaces, the ClusterIP Services, and the headless Services each
// followed by its EndpointSlice.
func (c *cluster) writeManifests(w io.Writer) error {
	ew := &errWriter{w: w}
	for _, ns := range append([]string{"default", "kube-system"}, c.namespaces...) {
		ew.printf("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns)
	}
	for _, s := range append(append([]service(nil), c.system...), c.services...) {
		writeService(ew, s)
	}
	for _, h := range c.headless {
		writeHeadless(ew, h, nil)
	}
	return ew.err
}

func writeService(ew *errWriter, s service) {
	ew.printf("---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec:\n  type: ClusterIP\n  clusterIP: %s\n  clusterIPs: [%s]\n  selector: {app: %s}\n  ports:\n",
		s.Name, s.NS, s.IP, s.IP, s.Name)
	for _, p := range s.Ports {
		ew.printf("  - {name: %s, port: %d, protocol: %s}\n", p.Name, p.Port, p.Protocol)
	}
}

// writeHeadless writes a headless Service and its EndpointSlice. ready[i]
// is endpoint i's readiness; a nil ready means all are ready.
func writeHeadless(ew *errWriter, h headless, ready []bool) {
	ew.printf("---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec:\n  clusterIP: None\n  clusterIPs: [None]\n  selector: {app: %s}\n  ports:\n  - {name: %s, port: %d, targetPort: %d, protocol: %s}\n",
		h.Name, h.NS, h.Name, h.Port.Name, h.Port.Port, h.EPPort.Port, h.Port.Protocol)
	ew.printf("---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-%s\n  namespace: %s\n  labels: {kubernetes.io/service-name: %s}\naddressType: IPv4\nports:\n- {name: %s, port: %d, protocol: %s}\nendpoints:\n",
		h.Name, sliceSuffix(h.Name), h.NS, h.Name, h.EPPort.Name, h.EPPort.Port, h.EPPort.Protocol)
	for i, a := range h.Addrs {
		r := ready == nil || ready[i]
		ew.printf("- addresses: [%s]\n  conditions: {ready: %t, serving: %t, terminating: false}\n  targetRef: {kind: Pod, name: %s-%d, namespace: %s}\n",
			a, r, r, h.Name, i, h.NS)
	}
}

// sliceSuffix is a stable stand-in for the random suffix the EndpointSlice
// controller appends.
func sliceSuffix(name string) string {
	var h uint32 = 2166136261
	for i := range len(name) {
		h = (h ^ uint32(name[i])) * 16777619
	}
	const letters = "bcdfghjklmnpqrstvwxz2456789"
	var b strings.Builder
	for range 5 {
		b.WriteByte(letters[h%uint32(len(letters))])
		h /= uint32(len(letters))
	}
	return b.String()
}

// errWriter keeps the first write error, so that long runs of writes check
// it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (ew *errWriter) printf(format string, args ...any) {
	if ew.err != nil {
		return
	}
	_, ew.err = fmt.Fprintf(ew.w, format, args...)
}
