package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is a mistake in a Corefile, tied to the line it was found on. Every
// error Parse returns about the text of a Corefile is an *Error.
type Error struct {
	File string
	Line int
	// Msg is the lower-case explanation, without the position.
	Msg string
}

// Error formats e as "FILE:LINE: MSG".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

func errorf(file string, line int, format string, args ...any) error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// caddyError rewrites an error from caddyfile ("FILE:LINE - Error during
// parsing: Msg" or "FILE:LINE - Syntax error: Msg") into an *Error, so that
// syntax errors look like all the others.
func caddyError(file string, err error) error {
	msg := err.Error()
	line := 1
	if rest, ok := strings.CutPrefix(msg, file+":"); ok {
		digits := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
		if n, convErr := strconv.Atoi(rest[:digits]); convErr == nil {
			line = max(n, 1)
			rest = rest[digits:]
			for _, sep := range []string{" - Error during parsing: ", " - Syntax error: ", " - "} {
				if r, ok := strings.CutPrefix(rest, sep); ok {
					rest = r
					break
				}
			}
			msg = rest
		}
	}
	return &Error{File: file, Line: line, Msg: lowerFirst(msg)}
}

// lowerFirst lower-cases the first letter of caddyfile's capitalised
// messages, leaving quoted tokens further on alone.
func lowerFirst(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToLower(r)) + s[size:]
}
