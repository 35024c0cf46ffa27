package corral

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Corral's own error codes (the code union of @corral/types). Any other code a plugin uses is its
// own and travels as "<plugin>:<code>".
const (
	CodeNotFound          = "not_found"
	CodeAlreadyExists     = "already_exists"
	CodeInvalidArgument   = "invalid_argument"
	CodePermissionDenied  = "permission_denied"
	CodeRateLimited       = "rate_limited"
	CodeResourceExhausted = "resource_exhausted"
	CodeDeadlineExceeded  = "deadline_exceeded"
	CodeUnavailable       = "unavailable"
	CodeCanceled          = "canceled"
	CodeUnimplemented     = "unimplemented"
	CodePluginError       = "plugin_error"
	CodeInternal          = "internal"
)

// corralCodes is every code of the union, including those only the host raises.
var corralCodes = map[string]bool{
	"manifest_invalid": true, "config_invalid": true, "load_failed": true, "incompatible": true,
	CodeNotFound: true, CodeAlreadyExists: true, CodeInvalidArgument: true, CodePermissionDenied: true,
	CodeRateLimited: true, CodeResourceExhausted: true, CodeDeadlineExceeded: true,
	CodeUnavailable: true, CodeCanceled: true, CodeUnimplemented: true, "plugin_trap": true,
	CodePluginError: true, CodeInternal: true,
}

// Error is a Corral PluginError as it crosses the wire: the host's refusal of a host call, or a
// plugin function's failure. A plugin returns one (see Errorf) to fail a call with a code of its
// own; any other error fails the call as "plugin_error".
type Error struct {
	// Code is a Corral code (CodeNotFound, ...) or the plugin's own: "bad_key" in a plugin's
	// Errorf reaches the host as "<plugin>:bad_key".
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfterMs is, for CodeRateLimited, how long until a retry can succeed.
	RetryAfterMs int64 `json:"retryAfterMs,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf makes an *Error with code and a formatted message.
//
//	return nil, corral.Errorf("bad_key", "a key is required")
func Errorf(code, format string, args ...interface{}) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Code is the Corral code of err: its *Error's code (found with errors.As), CodeDeadlineExceeded or
// CodeCanceled for a context's errors, CodePluginError for any other error, "" for nil.
func Code(err error) string {
	if err == nil {
		return ""
	}
	return asError(err).Code
}

// asError is err as the *Error it travels as.
func asError(err error) *Error {
	var failure *Error
	switch {
	case errors.As(err, &failure):
		return failure
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeDeadlineExceeded, Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeCanceled, Message: err.Error()}
	}
	return &Error{Code: CodePluginError, Message: err.Error()}
}

// wireError is err as plugin `name` sends it to the host: a code of the plugin's own gets its prefix
// (as the host does for WASM plugins), so that the host keeps it.
func wireError(err error, name string) *Error {
	failure := *asError(err)
	if !corralCodes[failure.Code] && !strings.Contains(failure.Code, ":") {
		failure.Code = name + ":" + failure.Code
	}
	return &failure
}

// errorMetadataKey is the trailer under which a failed RPC carries its whole error as JSON (what
// the host reads before the gRPC status); errorMetadataMaxBytes bounds it, as the host expects.
const (
	errorMetadataKey      = "corral-error"
	errorMetadataMaxBytes = 8 << 10
)

// rpcError fails an RPC (Init, Shutdown) with failure: its JSON in the trailer, where the host reads
// code and message. The status code is left Unknown: the host takes the code from the trailer.
func rpcError(ctx context.Context, failure *Error) error {
	data := asciiJSON(failure)
	for message := []rune(failure.Message); len(data) > errorMetadataMaxBytes; {
		message = message[:len(message)/2]
		data = asciiJSON(&Error{Code: failure.Code, Message: string(message) + "…"})
	}
	// Only fails outside a server RPC, which rpcError is never called from.
	_ = grpc.SetTrailer(ctx, metadata.Pairs(errorMetadataKey, data))
	return status.Error(codes.Unknown, failure.Message)
}

// asciiJSON is failure as JSON with every character outside printable ASCII escaped: gRPC metadata
// values are printable ASCII.
func asciiJSON(failure *Error) string {
	data, _ := json.Marshal(failure)
	var out strings.Builder
	for _, r := range string(data) {
		switch {
		case r >= 0x20 && r < 0x7f:
			out.WriteRune(r)
		case r > 0xffff:
			high, low := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, high, low)
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
	}
	return out.String()
}
