package engineio

import "strconv"

// Engine.IO error codes, the "code" of the JSON body a server answers a refused request with.
const (
	ErrCodeTransportUnknown   = 0
	ErrCodeUnknownSID         = 1
	ErrCodeBadHandshakeMethod = 2
	ErrCodeBadRequest         = 3
	ErrCodeForbidden          = 4
	ErrCodeUnsupportedVersion = 5
)

var errorMessages = [...]string{
	"Transport unknown",
	"Session ID unknown",
	"Bad handshake method",
	"Bad request",
	"Forbidden",
	"Unsupported protocol version",
}

var errorBodies = func() [len(errorMessages)][]byte {
	var b [len(errorMessages)][]byte
	for code, msg := range errorMessages {
		b[code] = []byte(`{"code":` + strconv.Itoa(code) + `,"message":"` + msg + `"}`)
	}
	return b
}()

// ErrorMessage is the message of an error code ("Session ID unknown" for 1).
func ErrorMessage(code int) string { return errorMessages[code] }

// ErrorBody is the JSON body Node answers with, e.g. {"code":1,"message":"Session ID unknown"}.
// The slice is shared: do not modify it.
func ErrorBody(code int) []byte { return errorBodies[code] }

// ErrorStatus is the HTTP status of an error code: 403 for Forbidden, else 400.
func ErrorStatus(code int) int {
	if code == ErrCodeForbidden {
		return 403
	}
	return 400
}
