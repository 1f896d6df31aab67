package socketio

import (
	"cmp"
	"encoding/json"
	"math"
	"strconv"
)

// reservedEvents are the names Node refuses in an incoming EVENT.
var reservedEvents = [...]string{
	"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
}

// IsReservedEvent reports whether name may not be used as an event name.
func IsReservedEvent(name string) bool {
	for _, r := range reservedEvents {
		if name == r {
			return true
		}
	}
	return false
}

// checkPayload validates p.Data as JSON of the shape p.Type requires (and its
// placeholders for binary types).
func checkPayload(p Packet) error {
	if p.Data == nil {
		if p.Type == Event || p.Type == BinaryEvent {
			return invalid("%v without payload", p.Type)
		}
		return nil
	}
	if !json.Valid(p.Data) {
		return invalid("payload is not valid JSON")
	}
	first := p.Data[skipSpace(p.Data, 0)]
	switch p.Type {
	case Connect:
		if first != '{' {
			return invalid("CONNECT payload must be an object")
		}
	case Disconnect:
		return invalid("DISCONNECT carries no payload")
	case Event, BinaryEvent:
		if _, err := eventName(p.Data); err != nil {
			return err
		}
	case Ack, BinaryAck:
		if first != '[' {
			return invalid("%v payload must be an array", p.Type)
		}
	case ConnectError:
		if first != '{' && first != '"' {
			return invalid("CONNECT_ERROR payload must be an object or a string")
		}
	}
	if p.Type.IsBinary() {
		_, err := checkPlaceholders(p.Data, skipSpace(p.Data, 0), p.Attachments)
		return err
	}
	return nil
}

// Args splits a JSON array (EVENT or ACK data) into its top-level elements,
// as raw JSON without re-encoding; the elements alias data. Empty data (an
// ACK without payload) has no arguments. For an event, element 0 is the name.
func Args(data []byte) ([]json.RawMessage, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if !json.Valid(data) {
		return nil, invalid("arguments are not valid JSON")
	}
	i := skipSpace(data, 0)
	if data[i] != '[' {
		return nil, invalid("arguments are not an array")
	}
	var out []json.RawMessage
	for i = firstElement(data, i); data[i] != ']'; i = nextElement(data, i) {
		out = append(out, json.RawMessage(value(data, i)))
	}
	return out, nil
}

// EventName returns the first element of an EVENT array: the string's value,
// or the number's text. It fails on anything else and on reserved names.
func EventName(data []byte) (string, error) {
	if !json.Valid(data) {
		return "", invalid("event is not valid JSON")
	}
	raw, err := eventName(data)
	if err != nil || raw[0] != '"' {
		return string(raw), err
	}
	return unquote(raw)
}

// eventName returns the raw first element of the valid JSON event array data,
// checked the way Node checks it, without allocating in the common case.
func eventName(data []byte) ([]byte, error) {
	i := skipSpace(data, 0)
	if data[i] != '[' {
		return nil, invalid("event payload must be an array")
	}
	i = firstElement(data, i)
	switch c := data[i]; {
	case c == ']':
		return nil, invalid("event payload is an empty array")
	case c == '-' || isDigit(c):
		return value(data, i), nil
	case c != '"':
		return nil, invalid("event name must be a string or a number")
	}
	raw := value(data, i)
	if reserved, err := isReservedLiteral(raw); reserved || err != nil {
		return nil, cmp.Or(err, invalid("reserved event name %s", raw))
	}
	return raw, nil
}

// isReservedLiteral reports whether the string literal raw names a reserved
// event; escapes are decoded first so "\u0063onnect" is caught too.
func isReservedLiteral(raw []byte) (bool, error) {
	inner := raw[1 : len(raw)-1]
	if !hasBackslash(inner) {
		return IsReservedEvent(string(inner)), nil // no allocation: compared in place
	}
	name, err := unquote(raw)
	return IsReservedEvent(name), err
}

// unquote decodes a JSON string literal; the common escape-free case costs
// only the string conversion.
func unquote(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	if !hasBackslash(inner) {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid("bad string: %v", err)
	}
	return s, nil
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// The scanners below assume b is valid JSON (checked with json.Valid first),
// which keeps them short: they only find where values end.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index past the string literal opening at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index past the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != ']' && b[i] != '}' {
			i++
		}
		return i
	}
}

// value returns the value starting at b[i], capped so appends cannot clobber b.
func value(b []byte, i int) []byte {
	end := skipValue(b, i)
	return b[i:end:end]
}

// firstElement returns the index of the first element of the array opening at
// b[i], or of its ']' when empty.
func firstElement(b []byte, i int) int { return skipSpace(b, i+1) }

// nextElement returns the index of the element after the one at b[i], or of
// the closing ']'.
func nextElement(b []byte, i int) int { return afterValue(b, skipValue(b, i)) }

// afterValue steps over the space and the ',' that follow a value ending at
// b[i-1], returning the index of the next value or of the closing bracket.
func afterValue(b []byte, i int) int {
	i = skipSpace(b, i)
	if b[i] == ',' {
		return skipSpace(b, i+1)
	}
	return i
}

// checkPlaceholders walks the value at b[i] and checks that every placeholder
// object ({"_placeholder":true,"num":N}) names one of n attachments, as Node
// does when it reconstructs a packet. It returns the index past the value even
// on error, and visits each byte once, so deep nesting stays linear.
func checkPlaceholders(b []byte, i, n int) (end int, err error) {
	switch b[i] {
	case '[':
		for i = firstElement(b, i); b[i] != ']'; i = afterValue(b, i) {
			var e error
			if i, e = checkPlaceholders(b, i, n); err == nil {
				err = e
			}
		}
		return i + 1, err
	case '{':
		end, _, _, err = checkObject(b, i, n)
		return end, err
	default:
		return skipValue(b, i), nil
	}
}

// checkObject walks the object at b[i]. A placeholder (whatever else it holds:
// Node replaces it whole) must have an integer num in [0, n); any other object
// has its member values checked. Duplicate keys resolve to the last one, as in
// JSON.parse.
func checkObject(b []byte, i, n int) (end, num int, isPlaceholder bool, err error) {
	var numRaw []byte
	obj := i
	for i = firstElement(b, i); b[i] != '}'; i = afterValue(b, i) {
		keyEnd := skipString(b, i)
		key, kerr := unquote(b[i:keyEnd])
		start := skipSpace(b, skipSpace(b, keyEnd)+1) // past ':'
		var verr error
		i, verr = checkPlaceholders(b, start, n)
		if err == nil {
			err = cmp.Or(kerr, verr)
		}
		switch key {
		case "_placeholder":
			isPlaceholder = string(b[start:i]) == "true"
		case "num":
			numRaw = b[start:i]
		}
	}
	end = i + 1
	if !isPlaceholder {
		return end, 0, false, err
	}
	f, perr := strconv.ParseFloat(string(numRaw), 64)
	if perr != nil || f < 0 || f >= float64(n) || f != math.Trunc(f) {
		return end, 0, true, invalid("illegal attachment placeholder %s", b[obj:end])
	}
	return end, int(f), true, nil
}
