package config

import (
	"regexp"
	"strings"
	"time"
)

// Errors is the errors directive:
//
//	errors {
//	    stacktrace
//	    consolidate DURATION REGEXP [LEVEL]
//	}
//
// Each consolidate rule collects the errors whose text matches REGEXP and
// logs, once per DURATION, how many there were, instead of each one; LEVEL
// is warning, error (the default), info or debug. stacktrace is accepted
// and ignored: svcdisc's handlers return errors, they do not panic.
type Errors struct {
	Consolidate []Consolidate
}

// Consolidate is one consolidate rule of the errors directive.
type Consolidate struct {
	Period time.Duration
	Regexp *regexp.Regexp
	Level  string
}

func (p *parser) errors(d directive) (*Errors, error) {
	if len(d.args) > 0 {
		return nil, errorf(p.filename, d.line, "errors: takes no arguments, got %q", d.args[0])
	}
	e := &Errors{}
	for _, o := range d.block {
		switch o.name {
		case "stacktrace":
			if err := p.wantArgs(o, 0, 0); err != nil {
				return nil, err
			}
		case "consolidate":
			if err := p.wantArgs(o, 2, 3); err != nil {
				return nil, err
			}
			period, err := p.duration(o.line, o.name, o.args[0], time.Second)
			if err != nil {
				return nil, err
			}
			re, err := regexp.Compile(o.args[1])
			if err != nil {
				return nil, errorf(p.filename, o.line, "consolidate: %q is not a regular expression: %v", o.args[1], err)
			}
			level := "error"
			if len(o.args) == 3 {
				level = o.args[2]
				switch level {
				case "warning", "error", "info", "debug":
				default:
					return nil, errorf(p.filename, o.line, "consolidate: unknown level %q: want warning, error, info or debug", level)
				}
			}
			e.Consolidate = append(e.Consolidate, Consolidate{Period: period, Regexp: re, Level: level})
		default:
			return nil, errorf(p.filename, o.line, "errors: unknown option %q", o.name)
		}
	}
	return e, nil
}

// LogFormat is the log directive's default line, CoreDNS's.
const LogFormat = `{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}`

// LogRule is one name scope of a log directive:
//
//	log [NAMES…] [FORMAT] {
//	    class CLASSES…
//	}
//
// A query whose name is in Name (a zone) and whose reply is of one of
// Classes is logged in Format. With one argument it is a name; with more,
// the last is the format when it holds a "{". The format's placeholders are
// CoreDNS's; {common} and {combined} are its two named formats. Classes are
// success (NOERROR), denial (NXDOMAIN), error (anything else) or all (the
// default).
type LogRule struct {
	Name    string
	Format  string
	Classes []string
}

func (p *parser) log(d directive) ([]LogRule, error) {
	names, format := []string{"."}, LogFormat
	args := d.args
	if len(args) > 1 && strings.Contains(args[len(args)-1], "{") {
		switch f := args[len(args)-1]; f {
		case "{common}":
		case "{combined}":
			format = LogFormat + ` "{>opcode}"`
		default:
			format = f
		}
		args = args[:len(args)-1]
	}
	if len(args) > 0 {
		names = names[:0]
		for _, a := range args {
			z, err := normalizeZone(a)
			if err != nil {
				return nil, errorf(p.filename, d.line, "log: %v", err)
			}
			names = append(names, z)
		}
	}
	classes := []string{"all"}
	for i, o := range d.block {
		if o.name != "class" {
			return nil, errorf(p.filename, o.line, "log: unknown option %q: want class", o.name)
		}
		if len(o.args) == 0 {
			return nil, errorf(p.filename, o.line, "class: want at least one of all, success, denial, error")
		}
		if i == 0 {
			classes = nil
		}
		for _, c := range o.args {
			switch c {
			case "all", "success", "denial", "error":
				classes = append(classes, c)
			default:
				return nil, errorf(p.filename, o.line, "class: unknown class %q: want all, success, denial or error", c)
			}
		}
	}
	rules := make([]LogRule, len(names))
	for i, n := range names {
		rules[i] = LogRule{Name: n, Format: format, Classes: classes}
	}
	return rules, nil
}
