package engineio

import (
	"math"
	"strconv"
)

// OpenInfo is the data of an open packet, the handshake answer.
type OpenInfo struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload,omitempty"`
}

// AppendOpen appends the open packet's JSON object (without the '0' type
// digit), with Node's key order: sid, upgrades, pingInterval, pingTimeout,
// then maxPayload unless it is zero. Nil Upgrades is written as [].
func AppendOpen(dst []byte, o OpenInfo) []byte {
	dst = append(dst, `{"sid":`...)
	dst = appendJSONString(dst, o.SID, false)
	dst = append(dst, `,"upgrades":[`...)
	for i, u := range o.Upgrades {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, u, false)
	}
	dst = append(dst, `],"pingInterval":`...)
	dst = strconv.AppendInt(dst, int64(o.PingInterval), 10)
	dst = append(dst, `,"pingTimeout":`...)
	dst = strconv.AppendInt(dst, int64(o.PingTimeout), 10)
	if o.MaxPayload != 0 {
		dst = append(dst, `,"maxPayload":`...)
		dst = strconv.AppendInt(dst, int64(o.MaxPayload), 10)
	}
	return append(dst, '}')
}

// ParseOpen parses the open packet's JSON (the data after the '0' digit) and
// requires a non-empty sid. Keys match exactly (unlike encoding/json, which
// folds case); unknown keys are skipped after validation, the last of
// duplicate keys wins, and null leaves a field at its zero value. Numbers must
// be integers.
func ParseOpen(data []byte) (OpenInfo, error) {
	var o OpenInfo
	if err := parseOpenObject(data, &o); err != nil {
		return OpenInfo{}, packetError("open packet: %w", err)
	}
	if o.SID == "" {
		return OpenInfo{}, packetError("open packet has no sid")
	}
	return o, nil
}

func parseOpenObject(data []byte, o *OpenInfo) error {
	r := jsonReader{s: data}
	if err := r.expect('{'); err != nil {
		return err
	}
	if r.peek() == '}' {
		r.i++
		return r.end()
	}
	for {
		if err := r.openField(o); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return r.end()
		default:
			return errorString("expected ',' or '}' in object")
		}
	}
}

// openField reads one "key": value pair of the open object into o.
func (r *jsonReader) openField(o *OpenInfo) error {
	var buf [32]byte
	key, err := r.stringBytes(buf[:0])
	if err != nil {
		return err
	}
	if err := r.expect(':'); err != nil {
		return err
	}
	if r.null() {
		return nil
	}
	switch string(key) {
	case "sid":
		o.SID, err = r.stringValue()
	case "upgrades":
		o.Upgrades, err = r.stringArray()
	case "pingInterval":
		o.PingInterval, err = r.int()
	case "pingTimeout":
		o.PingTimeout, err = r.int()
	case "maxPayload":
		o.MaxPayload, err = r.int()
	default:
		err = r.skipValue(0)
	}
	return err
}

// maxJSONDepth bounds nesting in skipped values so hostile input cannot
// exhaust the stack.
const maxJSONDepth = 64

// jsonReader is a minimal JSON scanner for the open packet: the object is
// small and fixed, and encoding/json would cost reflection and a dozen
// allocations on the proxy's handshake path.
type jsonReader struct {
	s []byte
	i int
}

func (r *jsonReader) skipSpace() {
	for r.i < len(r.s) {
		switch r.s[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (r *jsonReader) peek() byte {
	r.skipSpace()
	if r.i < len(r.s) {
		return r.s[r.i]
	}
	return 0
}

func (r *jsonReader) expect(c byte) error {
	if r.peek() != c {
		return errorString("expected '" + string(rune(c)) + "'")
	}
	r.i++
	return nil
}

func (r *jsonReader) end() error {
	r.skipSpace()
	if r.i != len(r.s) {
		return errorString("trailing data after JSON object")
	}
	return nil
}

// null consumes a null literal if one is next.
func (r *jsonReader) null() bool {
	if r.peek() == 'n' && r.literal("null") == nil {
		return true
	}
	return false
}

func (r *jsonReader) literal(lit string) error {
	if len(r.s)-r.i < len(lit) || string(r.s[r.i:r.i+len(lit)]) != lit {
		return errorString("bad literal")
	}
	r.i += len(lit)
	return nil
}

// rawString consumes a string literal and returns its undecoded content.
func (r *jsonReader) rawString() (raw []byte, escaped bool, err error) {
	if r.peek() != '"' {
		return nil, false, errorString("expected string")
	}
	raw, next, escaped, err := scanJSONString(r.s[r.i:])
	r.i += next
	return raw, escaped, err
}

// stringBytes consumes a string literal, decoding it into buf if it holds
// escapes and aliasing the input otherwise.
func (r *jsonReader) stringBytes(buf []byte) ([]byte, error) {
	raw, escaped, err := r.rawString()
	if err != nil || !escaped {
		return raw, err
	}
	return appendJSONUnquote(buf, raw), nil
}

func (r *jsonReader) stringValue() (string, error) {
	var buf [64]byte
	b, err := r.stringBytes(buf[:0])
	return string(b), err
}

// stringArray reads an array of strings, sharing the common transport names
// instead of allocating them.
func (r *jsonReader) stringArray() ([]string, error) {
	if err := r.expect('['); err != nil {
		return nil, err
	}
	list := []string{}
	if r.peek() == ']' {
		r.i++
		return list, nil
	}
	for {
		var buf [32]byte
		b, err := r.stringBytes(buf[:0])
		if err != nil {
			return nil, err
		}
		list = append(list, TransportName(b))
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return list, nil
		default:
			return nil, errorString("expected ',' or ']' in array")
		}
	}
}

// TransportName returns a transport's name as a string, without allocating for the known ones
// (polling, websocket, webtransport): proxies and servers read it off every request.
func TransportName(b []byte) string {
	switch string(b) {
	case "websocket":
		return "websocket"
	case "webtransport":
		return "webtransport"
	case "polling":
		return "polling"
	}
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// int reads a JSON integer that fits in an int.
func (r *jsonReader) int() (int, error) {
	r.skipSpace()
	s, i := r.s, r.i
	neg := i < len(s) && s[i] == '-'
	if neg {
		i++
	}
	if i >= len(s) || !isDigit(s[i]) {
		return 0, errorString("expected integer")
	}
	var n uint64
	limit := uint64(math.MaxInt)
	if neg {
		limit++
	}
	for ; i < len(s) && isDigit(s[i]); i++ {
		d := uint64(s[i] - '0')
		if n > (limit-d)/10 {
			return 0, errorString("integer overflows int")
		}
		n = n*10 + d
		if n == 0 { // a leading zero ends the number, as JSON has no "01"
			i++
			break
		}
	}
	if i < len(s) && (s[i] == '.' || s[i] == 'e' || s[i] == 'E') {
		return 0, errorString("expected integer, got fraction or exponent")
	}
	r.i = i
	if neg {
		return int(-n), nil
	}
	return int(n), nil
}

// skipValue validates and skips any JSON value.
func (r *jsonReader) skipValue(depth int) error {
	if depth >= maxJSONDepth {
		return errorString("JSON nested too deeply")
	}
	switch c := r.peek(); {
	case c == '"':
		_, _, err := r.rawString()
		return err
	case c == '{':
		return r.skipContainer(depth, '}', true)
	case c == '[':
		return r.skipContainer(depth, ']', false)
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '-' || isDigit(c):
		return r.skipNumber()
	}
	return errorString("expected JSON value")
}

// skipContainer skips an object (keyed) or array whose opening byte is next.
func (r *jsonReader) skipContainer(depth int, closer byte, keyed bool) error {
	r.i++
	if r.peek() == closer {
		r.i++
		return nil
	}
	for {
		if keyed {
			if _, _, err := r.rawString(); err != nil {
				return err
			}
			if err := r.expect(':'); err != nil {
				return err
			}
		}
		if err := r.skipValue(depth + 1); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case closer:
			r.i++
			return nil
		default:
			return errorString("expected ',' or closing bracket")
		}
	}
}

// skipNumber skips -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *jsonReader) skipNumber() error {
	s, i := r.s, r.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && isDigit(s[i]):
		i = skipDigits(s, i)
	default:
		return errorString("bad number")
	}
	if i < len(s) && s[i] == '.' {
		if i++; i >= len(s) || !isDigit(s[i]) {
			return errorString("bad number fraction")
		}
		i = skipDigits(s, i)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		if i++; i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return errorString("bad number exponent")
		}
		i = skipDigits(s, i)
	}
	r.i = i
	return nil
}

func skipDigits(s []byte, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
