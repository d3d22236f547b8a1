package payload

import (
	"encoding/json"
	"strconv"
)

// scanner walks a document once, validating it and recording the spans of wanted values.
type scanner struct {
	data []byte
	pos  int
	out  [][]byte
}

func (s *scanner) fail(msg string) error {
	return &SyntaxError{Offset: s.pos, Msg: msg}
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans one value at s.pos. want is the schema node for this position (nil when nothing
// below here is wanted).
func (s *scanner) value(want *node, depth int) error {
	if depth > maxDepth {
		return s.fail("nesting too deep")
	}
	if s.pos >= len(s.data) {
		return s.fail("unexpected end of input")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(want, depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.fail("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

func (s *scanner) object(want *node, depth int) error {
	s.pos++ // '{'
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.fail("expected a string key")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.fail("expected ':' after key")
		}
		s.pos++
		s.skipSpace()
		var child *node
		if want != nil && want.children != nil {
			if inner := key[1 : len(key)-1]; !containsByte(inner, '\\') {
				child = want.children[string(inner)] // no allocation: the conversion is in the index
			} else {
				child = want.children[unescapeKey(key)]
			}
		}
		start := s.pos
		if err := s.value(child, depth+1); err != nil {
			return err
		}
		// Later duplicates win, as with encoding/json.
		if child != nil && child.index >= 0 {
			s.out[child.index] = s.data[start:s.pos:s.pos]
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.fail("unexpected end of input in object")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.fail("expected ',' or '}' in object")
		}
	}
}

func (s *scanner) array(depth int) error {
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if err := s.value(nil, depth+1); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.fail("unexpected end of input in array")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.fail("expected ',' or ']' in array")
		}
	}
}

// strClass marks the bytes that end the fast path of a string: the quote, the backslash and the
// control characters JSON forbids unescaped.
var strClass = func() (t [256]bool) {
	for i := 0; i < 0x20; i++ {
		t[i] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// str scans a string starting at its opening quote and returns its raw text with the quotes.
func (s *scanner) str() ([]byte, error) {
	start := s.pos
	s.pos++
	d := s.data
	for {
		i := s.pos
		for i < len(d) && !strClass[d[i]] {
			i++
		}
		s.pos = i
		if i >= len(d) {
			return nil, s.fail("unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			s.pos++
			return d[start:s.pos], nil
		case c == '\\':
			if err := s.escape(); err != nil {
				return nil, err
			}
		default:
			return nil, s.fail("control character in string")
		}
	}
}

func (s *scanner) escape() error {
	s.pos++ // '\'
	if s.pos >= len(s.data) {
		return s.fail("unterminated escape")
	}
	switch s.data[s.pos] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos++
		return nil
	case 'u':
		if s.pos+5 > len(s.data) {
			return s.fail("short \\u escape")
		}
		for _, h := range s.data[s.pos+1 : s.pos+5] {
			if !isHex(h) {
				return s.fail("bad \\u escape")
			}
		}
		s.pos += 5
		return nil
	default:
		return s.fail("bad escape")
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *scanner) number() error {
	d := s.data
	if d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.pos < len(d) && isDigit(d[s.pos]):
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	default:
		return s.fail("bad number")
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if s.pos >= len(d) || !isDigit(d[s.pos]) {
			return s.fail("bad fraction")
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if s.pos >= len(d) || !isDigit(d[s.pos]) {
			return s.fail("bad exponent")
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	return nil
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.fail("bad literal")
	}
	s.pos += len(lit)
	return nil
}

// unescapeKey decodes a key that has escapes, so "\u0061ction" matches "action" exactly as
// encoding/json would match it. The key was validated already, so decoding cannot fail.
func unescapeKey(raw []byte) string {
	var k string
	_ = json.Unmarshal(raw, &k)
	return k
}
