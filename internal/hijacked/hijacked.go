// Package hijacked looks under fasthttp's hijacked connection: whether reading the raw connection
// directly loses nothing, and the raw connection itself. The WebSocket relay and the loop front both
// take hijacked sockets into the event loop, and may do so only when no byte is left in fasthttp's
// reader.
package hijacked

import (
	"bufio"
	"net"
	"reflect"
)

// rawConn is fasthttp's hijacked connection's way to the *net.TCPConn underneath.
type rawConn interface{ UnsafeConn() net.Conn }

// ReadsRaw reports whether reading c's raw connection directly loses nothing: fasthttp's hijacked
// connection reads through the server's buffered reader, which (with ReduceMemoryUsage) is the raw
// connection itself when the server had nothing buffered. fasthttp does not export that reader, so
// this peeks at it; if its layout changes, the answer is false and the tunnel is copied through the
// wrapper instead (slower, never wrong). TestReadsRawSeesFasthttpReader guards the layout.
func ReadsRaw(c net.Conn) bool {
	rc, ok := c.(rawConn)
	if !ok {
		return false
	}
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return false
	}
	r := v.Elem().FieldByName("r")
	if !r.IsValid() || r.Kind() != reflect.Interface || r.IsNil() {
		return false
	}
	inner := r.Elem()
	if inner.Kind() != reflect.Pointer {
		return false
	}
	raw := reflect.ValueOf(rc.UnsafeConn())
	if raw.Kind() != reflect.Pointer {
		return false
	}
	if inner.Type() == reflect.TypeOf((*bufio.Reader)(nil)) {
		// fasthttp points a hijacked reader at the connection itself, or, when it held bytes of the
		// request stream, at those bytes and then the connection: not raw, though nothing is buffered.
		return (*bufio.Reader)(inner.UnsafePointer()).Buffered() == 0 && isReader(inner.Elem().FieldByName("rd"), raw)
	}
	return inner.UnsafePointer() == raw.UnsafePointer()
}

// isReader reports whether field (an io.Reader) holds the pointer raw.
func isReader(field, raw reflect.Value) bool {
	if !field.IsValid() || field.Kind() != reflect.Interface || field.IsNil() {
		return false
	}
	v := field.Elem()
	return v.Kind() == reflect.Pointer && v.UnsafePointer() == raw.UnsafePointer()
}

// Raw is the connection under fasthttp's hijack wrapper, or c itself when it is not one.
func Raw(c net.Conn) net.Conn {
	if rc, ok := c.(rawConn); ok {
		return rc.UnsafeConn()
	}
	return c
}
