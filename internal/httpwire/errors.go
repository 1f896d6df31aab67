package httpwire

import "errors"

// ErrNeedMore means the buffer holds a valid beginning of a head (or body) that is not finished
// yet: read more and call again.
var ErrNeedMore = errors.New("httpwire: need more bytes")

// Error is a refusal: what was wrong and the status a server answers a request with for it.
// Every refusal is one of the Err… values below, so callers compare with == or errors.Is.
type Error struct {
	msg    string
	status int
}

func (e *Error) Error() string { return e.msg }

// Status is the HTTP status for answering a client whose request was refused with e. A node's
// answer refused with e is the node's fault (ErrNotHTTP and the rest) or too large (the limits):
// the client then gets a 502, whatever Status says.
func (e *Error) Status() int { return e.status }

func newError(status int, msg string) *Error { return &Error{msg: "httpwire: " + msg, status: status} }

// Status returns the status to answer a refused request with: the *Error's own, 400 for any other
// error, 0 for nil and ErrNeedMore (nothing to answer yet).
func Status(err error) int {
	var e *Error
	switch {
	case err == nil, err == ErrNeedMore:
		return 0
	case errors.As(err, &e):
		return e.status
	}
	return 400
}

// Limits: the head or one of its lines is too large, or it has too many header lines.
var (
	ErrHeadTooLarge   = newError(431, "head larger than MaxHeaderBytes")
	ErrLineTooLong    = newError(431, "line longer than MaxLineBytes")
	ErrTooManyHeaders = newError(431, "more header lines than MaxHeaders")
)

// The start line.
var (
	ErrBadRequestLine = newError(400, "malformed request line")
	ErrBadTarget      = newError(400, "request target not in origin-form or http(s) absolute-form")
	ErrVersion        = newError(505, "HTTP version other than 1.0 and 1.1")
	// ErrNotHTTP: the first bytes of an answer cannot start an HTTP/1.x status line. This is what
	// says a node does not speak HTTP; it is never returned for a request.
	ErrNotHTTP = newError(502, "answer is not HTTP/1.x")
)

// Line ends and header lines.
var (
	ErrBareLF           = newError(400, "line ends with LF without CR")
	ErrBareCR           = newError(400, "CR not followed by LF")
	ErrObsFold          = newError(400, "header line starts with whitespace (obs-fold)")
	ErrBadHeaderName    = newError(400, "header name not a token, or no colon")
	ErrSpaceBeforeColon = newError(400, "whitespace between header name and colon")
	ErrBadHeaderValue   = newError(400, "control character in header value")
)

// Headers sidpin reads: framing, Host, Connection, Upgrade.
var (
	ErrBadContentLength       = newError(400, "Content-Length not 1*DIGIT or over 2^62")
	ErrDuplicateContentLength = newError(400, "more than one Content-Length")
	ErrUnsupportedTE          = newError(501, "Transfer-Encoding other than chunked")
	ErrDuplicateTE            = newError(400, "more than one Transfer-Encoding")
	ErrTEOnHTTP10             = newError(400, "Transfer-Encoding in an HTTP/1.0 message")
	ErrMissingHost            = newError(400, "HTTP/1.1 request without Host")
	ErrDuplicateHost          = newError(400, "more than one Host")
	ErrBadHost                = newError(400, "Host empty or not a host[:port]")
	ErrHostMismatch           = newError(400, "Host differs from the absolute-form target's authority")
	ErrBadConnection          = newError(400, "Connection option not a token, or naming Content-Length or Host")
	ErrDuplicateUpgrade       = newError(400, "more than one Upgrade")
)

// The chunked body.
var (
	ErrBadChunk          = newError(400, "malformed chunk framing")
	ErrChunkSizeOverflow = newError(400, "chunk size over 16 hex digits or int64")
	ErrChunkLineTooLong  = newError(400, "chunk-size line longer than MaxChunkLineBytes")
	ErrBadTrailer        = newError(400, "malformed trailer field")
	ErrTrailerTooLarge   = newError(431, "trailer section larger than MaxTrailerBytes")
)

// IsLimit reports whether err is one of the size limits (ErrHeadTooLarge, ErrLineTooLong,
// ErrTooManyHeaders, ErrChunkLineTooLong, ErrTrailerTooLarge): for a node's answer, the one kind
// of refusal that may be a client's doing (a huge URL echoed into a redirect) and not the node's.
func IsLimit(err error) bool {
	switch err {
	case ErrHeadTooLarge, ErrLineTooLong, ErrTooManyHeaders, ErrChunkLineTooLong, ErrTrailerTooLarge:
		return true
	}
	return false
}
