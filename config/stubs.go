package config

// Directives whose parsing is being written: each is refused with a clear
// message until then.

// Hosts is the hosts directive.
type Hosts struct{ Line int }

// Rewrite is one rewrite directive.
type Rewrite struct{ Line int }

// Template is one template directive.
type Template struct{ Line int }

func (p *parser) notYet(d directive) error {
	return errorf(p.filename, d.line, "%s is not supported yet", d.name)
}

func (p *parser) hosts(d directive, _ []string) (*Hosts, error) { return nil, p.notYet(d) }
func (p *parser) rewrite(d directive) (*Rewrite, error)         { return nil, p.notYet(d) }
func (p *parser) template(d directive, _ []string) (*Template, error) {
	return nil, p.notYet(d)
}
