package httpwire

// MaxHeaderFields is the capacity of the header array of a Request or Response: the most header
// lines any Limits can allow. Browsers send 10-25.
const MaxHeaderFields = 100

// Defaults of the zero fields of Limits.
const (
	DefaultMaxHeaderBytes    = 16 << 10 // sidpin's limits.max_header_bytes
	DefaultMaxHeaders        = MaxHeaderFields
	DefaultMaxLineBytes      = 8 << 10
	DefaultMaxChunkLineBytes = 1 << 10
	DefaultMaxTrailerBytes   = 8 << 10
)

// maxHeadBytes keeps every offset of a head within the int32 the parser stores.
const maxHeadBytes = 1 << 30

// Limits bound what the parsers read. A zero field takes its default.
type Limits struct {
	// MaxHeaderBytes bounds a whole head: start line, header lines and the blank line (ErrHeadTooLarge).
	MaxHeaderBytes int
	// MaxHeaders bounds the header lines (ErrTooManyHeaders); at most MaxHeaderFields.
	MaxHeaders int
	// MaxLineBytes bounds one line of a head, its CRLF included (ErrLineTooLong).
	MaxLineBytes int
	// MaxChunkLineBytes bounds a chunk-size line: size, extensions, CRLF (ErrChunkLineTooLong).
	MaxChunkLineBytes int
	// MaxTrailerBytes bounds a chunked body's trailer section with its last CRLF (ErrTrailerTooLarge).
	MaxTrailerBytes int
}

// normalized returns l with defaults for zero fields and every bound within what the types hold.
func (l Limits) normalized() Limits {
	l.MaxHeaderBytes = orDefault(l.MaxHeaderBytes, DefaultMaxHeaderBytes, maxHeadBytes)
	l.MaxHeaders = orDefault(l.MaxHeaders, DefaultMaxHeaders, MaxHeaderFields)
	l.MaxLineBytes = orDefault(l.MaxLineBytes, DefaultMaxLineBytes, l.MaxHeaderBytes)
	l.MaxChunkLineBytes = orDefault(l.MaxChunkLineBytes, DefaultMaxChunkLineBytes, maxHeadBytes)
	l.MaxTrailerBytes = orDefault(l.MaxTrailerBytes, DefaultMaxTrailerBytes, maxHeadBytes)
	return l
}

func orDefault(v, def, most int) int {
	if v <= 0 {
		v = def
	}
	return min(v, most)
}
