package config

import (
	"bytes"
	"os"
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// caddyfile.Parse returns server blocks as bare key strings plus tokens
// grouped by directive, so it cannot say on which line a block or a key is.
// This file recovers those lines from the raw token stream, following the
// same rules caddyfile uses to cut that stream into blocks.

// token is one lexed word of the Corefile, before any env substitution.
type token struct {
	text string
	line int
}

// lex splits data into tokens with caddyfile's own lexer, so that positions
// agree with the ones caddyfile.Parse reports.
func lex(filename string, data []byte) []token {
	d := caddyfile.NewDispenser(filename, bytes.NewReader(data))
	var toks []token
	for d.Next() {
		toks = append(toks, token{text: d.Val(), line: d.Line()})
	}
	return toks
}

// startsLine reports whether toks[i] is the first token on its line, counting
// the line breaks inside a quoted previous token as caddyfile does.
func startsLine(toks []token, i int) bool {
	if i == 0 {
		return true
	}
	prev := toks[i-1]
	return prev.line+strings.Count(prev.text, "\n") < toks[i].line
}

// blockLoc is where a server block and each of its keys are.
type blockLoc struct {
	line     int
	keyLines []int
}

// locateBlocks walks toks the way caddyfile's parser does and returns the
// position of every server block it would return. It expects input that
// caddyfile.Parse accepted, and refuses what caddyfile lets through but
// svcdisc does not: blocks without keys and unbalanced braces. Snippet
// definitions are skipped (caddyfile returns no block for them); a
// top-level import brings blocks this walk cannot see, which the caller
// detects by the count.
func locateBlocks(filename string, toks []token) ([]blockLoc, error) {
	var locs []blockLoc
	i, n := 0, len(toks)
	for i < n {
		var loc blockLoc
		var first string
		start := toks[i].line
		atEOF := false
		// Keys: words up to a "{" or the end of the line; a trailing
		// comma carries the list over to the next line.
		for {
			t := expandEnv(toks[i].text)
			if t == "{" {
				break
			}
			if t == "}" {
				// caddyfile would take it for the key of another block.
				return nil, errorf(filename, toks[i].line, `unexpected "}": no block is open`)
			}
			continued := false
			if t != "" {
				continued = strings.HasSuffix(t, ",")
				if len(loc.keyLines) == 0 {
					first = strings.TrimSuffix(t, ",")
				}
				loc.keyLines = append(loc.keyLines, toks[i].line)
			}
			i++
			if i == n {
				atEOF = true
				break
			}
			if !continued && startsLine(toks, i) {
				break
			}
		}
		snippet := !atEOF && len(loc.keyLines) == 1 && strings.HasPrefix(first, "(") && strings.HasSuffix(first, ")")
		if len(loc.keyLines) > 0 && first == "import" && !snippet {
			// A top-level import line: the blocks it brings are not here.
			i = skipDirective(toks, i-1)
			continue
		}
		if !atEOF {
			braced, open := toks[i].text == "{", toks[i].line
			if braced {
				i++
			}
			// Directives, up to the "}" that closes the block (or the
			// end of input for a block written without braces).
			closed := false
			for i < n {
				if toks[i].text == "}" {
					if !braced {
						return nil, errorf(filename, toks[i].line, `unexpected "}": no block is open`)
					}
					i++
					closed = true
					break
				}
				i = skipDirective(toks, i)
			}
			// caddyfile lets the last "}" of a directive's block double as
			// the server block's, which hides a missing brace.
			if braced && !closed {
				return nil, errorf(filename, open, `server block is not closed: missing "}"`)
			}
		}
		if len(loc.keyLines) == 0 {
			if atEOF {
				break // nothing but empty words ("") left
			}
			// caddyfile silently drops a block without keys.
			return nil, errorf(filename, start, `server block has no zone or port before "{"`)
		}
		if snippet {
			continue
		}
		loc.line = loc.keyLines[0]
		locs = append(locs, loc)
	}
	return locs, nil
}

// skipDirective returns the index of the first token after the directive
// starting at toks[i]: the next token that starts a line outside braces.
func skipDirective(toks []token, i int) int {
	nesting := 0
	for i++; i < len(toks); i++ {
		switch {
		case toks[i].text == "{":
			nesting++
		case nesting == 0 && startsLine(toks, i):
			return i
		case toks[i].text == "}" && nesting > 0:
			nesting--
		}
	}
	return i
}

// locationsMatch reports whether locs describes blocks key for key.
func locationsMatch(locs []blockLoc, blocks []caddyfile.ServerBlock) bool {
	if len(locs) != len(blocks) {
		return false
	}
	for i := range locs {
		if len(locs[i].keyLines) != len(blocks[i].Keys) {
			return false
		}
	}
	return true
}

// approximateLocations places each block, and all its keys, on the line of
// its first directive, or line 1 when it has none.
func approximateLocations(blocks []caddyfile.ServerBlock) []blockLoc {
	locs := make([]blockLoc, len(blocks))
	for i, b := range blocks {
		line := 0
		for _, toks := range b.Tokens {
			if len(toks) > 0 && (line == 0 || toks[0].Line < line) {
				line = toks[0].Line
			}
		}
		line = max(line, 1)
		locs[i].line = line
		for range b.Keys {
			locs[i].keyLines = append(locs[i].keyLines, line)
		}
	}
	return locs
}

// expandEnv replaces {%NAME%} and then {$NAME} placeholders with the
// environment's values, as caddyfile does to keys and arguments. It makes a
// single pass per syntax, which gives caddyfile's result unless a value
// itself contains a placeholder.
func expandEnv(s string) string {
	if !strings.Contains(s, "{%") && !strings.Contains(s, "{$") {
		return s
	}
	return expandRefs(expandRefs(s, "{%", "%}"), "{$", "}")
}

func expandRefs(s, open, close string) string {
	var b strings.Builder
	for {
		start := strings.Index(s, open)
		if start < 0 {
			break
		}
		end := strings.Index(s[start+len(open):], close)
		if end < 0 {
			break
		}
		if end == 0 {
			// caddyfile leaves the rest alone at an empty name.
			break
		}
		name := s[start+len(open) : start+len(open)+end]
		b.WriteString(s[:start])
		b.WriteString(os.Getenv(name))
		s = s[start+len(open)+end+len(close):]
	}
	b.WriteString(s)
	return b.String()
}
