package config

// Directives whose parsing is being written: each is refused with a clear
// message until then.

// Rewrite is one rewrite directive.
type Rewrite struct{ Line int }

func (p *parser) notYet(d directive) error {
	return errorf(p.filename, d.line, "%s is not supported yet", d.name)
}

func (p *parser) rewrite(d directive) (*Rewrite, error) { return nil, p.notYet(d) }
