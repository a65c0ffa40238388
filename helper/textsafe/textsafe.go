// Package textsafe is the one rule for printing text tickgate did not write
// itself — a reason, a marker's text, a job's output, a fleet record, a file
// name from a state file — where an operator reads it: every C0 and C1
// control character, DEL, Unicode line and paragraph separators, every bidi
// control (the Trojan Source characters) and every byte that is not UTF-8
// becomes a visible escape (\x1b, \n, \u202e, \xff). A terminal then shows
// what the text says instead of obeying it: no ESC]0;… retitles a window, no
// ESC[2J clears a screen, no U+202E reverses a line.
//
// Clean is for text (tables, messages, the journal's reason field);
// EscapeJSON for JSON, whose encoder escapes C0 but leaves DEL, C1 and bidi
// controls raw; Strings cleans every string of a value in place, for output
// whose consumer prints the values (the Ansible fact).
package textsafe

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// Unsafe says whether r must not reach a terminal as it is.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, 0x80 <= r && r <= 0x9f:
		return true // C0, DEL, C1
	case r == 0x061c, r == 0x200e, r == 0x200f, 0x202a <= r && r <= 0x202e, 0x2066 <= r && r <= 0x2069:
		return true // bidi controls: ALM, LRM, RLM, LRE..RLO, LRI..PDI
	case r == 0x2028, r == 0x2029:
		return true // line and paragraph separators
	}
	return false
}

// Clean returns s with every unsafe rune and every invalid byte escaped as
// Go writes them in a quoted string (\n, \t, \x1b, \u202e, \xff). Text
// with nothing to escape is returned as it is (no allocation).
func Clean(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	out := make([]byte, 0, len(s)+16)
	out = append(out, s[:i]...)
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\x`...)
			out = append(out, hex[s[i]>>4], hex[s[i]&0xf])
		case Unsafe(r):
			out = appendEscape(out, r)
		default:
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return string(out)
}

const hex = "0123456789abcdef"

// appendEscape writes r as strconv.QuoteRune does inside its quotes.
func appendEscape(out []byte, r rune) []byte {
	q := strconv.QuoteRuneToASCII(r) // '\x1b', '\n', '\u202e'
	return append(out, q[1:len(q)-1]...)
}

// firstUnsafe is the index of the first byte Clean changes, or -1.
func firstUnsafe(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || Unsafe(r) {
			return i
		}
		i += size
	}
	return -1
}

// EscapeJSON returns JSON text with the runes encoding/json leaves raw that
// a terminal would obey — DEL, C1 controls, bidi controls — written as
// \uXXXX escapes. Those runes can only stand inside JSON strings, so the
// result is the same JSON value. Text with none of them is returned as it
// is.
func EscapeJSON(b []byte) []byte {
	i := firstRawJSON(b)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	out = append(out, b[:i]...)
	for i < len(b) {
		if b[i] < utf8.RuneSelf && b[i] != 0x7f {
			out = append(out, b[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if Unsafe(r) {
			out = append(out, `\u`...)
			out = append(out, hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// firstRawJSON is the index of the first rune EscapeJSON changes, or -1.
// Only DEL and the lead bytes 0xc2 (C1), 0xd8 (U+061C) and 0xe2 (the bidi
// controls and separators) can start one, so most output is only scanned.
func firstRawJSON(b []byte) int {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case 0x7f, 0xc2, 0xd8, 0xe2:
			if r, _ := utf8.DecodeRune(b[i:]); Unsafe(r) {
				return i
			}
		}
	}
	return -1
}

// Strings cleans, in place, every string reachable from v (a pointer):
// struct fields, slices, arrays, maps' values, and JSON kept raw
// (json.RawMessage), which is decoded, cleaned and encoded again.
func Strings(v any) {
	cleanValue(reflect.ValueOf(v))
}

var rawType = reflect.TypeOf(json.RawMessage(nil))

func cleanValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			if v.Kind() == reflect.Interface {
				// The value inside an interface is not addressable: clean a
				// copy and put it back.
				c := reflect.New(v.Elem().Type()).Elem()
				c.Set(v.Elem())
				cleanValue(c)
				if v.CanSet() {
					v.Set(c)
				}
				return
			}
			cleanValue(v.Elem())
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(Clean(v.String()))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() {
				cleanValue(f)
			}
		}
	case reflect.Slice:
		if v.Type() == rawType {
			cleanRaw(v)
			return
		}
		for i := 0; i < v.Len(); i++ {
			cleanValue(v.Index(i))
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			cleanValue(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			cleanValue(e)
			v.SetMapIndex(k, e)
		}
	}
}

// cleanRaw cleans the strings inside a json.RawMessage (left as it is if it
// does not decode: what prints it checks it).
func cleanRaw(v reflect.Value) {
	var x any
	dec := json.NewDecoder(bytes.NewReader(v.Bytes()))
	dec.UseNumber() // numbers come back as they were written
	if dec.Decode(&x) != nil {
		return
	}
	p := reflect.ValueOf(&x).Elem()
	cleanValue(p)
	if out, err := json.Marshal(x); err == nil && v.CanSet() {
		v.SetBytes(out)
	}
}

// Writer passes text through to W with every unsafe rune escaped as Clean
// does, except newlines and tabs (a table's own layout). It is the last
// guard on an operator command's standard output and error: whatever a
// printer forgot, no control sequence reaches the terminal. JSON is
// written through it escaped by EscapeJSON first (nothing left to change).
type Writer struct {
	W io.Writer
}

// Write escapes p (a rune cut at the end of p counts as invalid bytes:
// tickgate writes whole strings) and reports len(p) written on success.
func (w Writer) Write(p []byte) (int, error) {
	i := firstUnsafeText(p)
	if i < 0 {
		return w.W.Write(p)
	}
	out := make([]byte, 0, len(p)+16)
	out = append(out, p[:i]...)
	for i < len(p) {
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == '\n' || r == '\t':
			out = append(out, p[i])
		case r == utf8.RuneError && size == 1:
			out = append(out, `\x`...)
			out = append(out, hex[p[i]>>4], hex[p[i]&0xf])
		case Unsafe(r):
			out = appendEscape(out, r)
		default:
			out = append(out, p[i:i+size]...)
		}
		i += size
	}
	if _, err := w.W.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// firstUnsafeText is firstUnsafe for a Writer: newlines and tabs pass.
func firstUnsafeText(p []byte) int {
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if (r == utf8.RuneError && size == 1) || Unsafe(r) {
			return i
		}
		i += size
	}
	return -1
}
