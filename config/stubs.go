package config

// Directives whose parsing is being written: each is refused with a clear
// message until then.

// Hosts is the hosts directive.
type Hosts struct{ Line int }

// Template is one template directive.
type Template struct{ Line int }

// K8sExternal is the k8s_external directive.
type K8sExternal struct{ Line int }

func (p *parser) notYet(d directive) error {
	return errorf(p.filename, d.line, "%s is not supported yet", d.name)
}

func (p *parser) hosts(d directive, _ []string) (*Hosts, error) { return nil, p.notYet(d) }
func (p *parser) template(d directive, _ []string) (*Template, error) {
	return nil, p.notYet(d)
}
func (p *parser) k8sExternal(d directive, _ []string) (*K8sExternal, error) {
	return nil, p.notYet(d)
}
