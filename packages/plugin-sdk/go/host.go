package corral

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	hostv1 "corral.dev/corral/internal/hostv1"
)

// Host is the host API, bound to the call (or the Init) that a plugin function got it with: every
// host call it makes is attributed to that call and checked against the plugin's permissions.
// Pass the function's ctx: the call's deadline bounds its host calls. A refusal is an *Error with
// the host's code (CodePermissionDenied, CodeRateLimited, ...).
type Host struct {
	calls *hostCalls
	token string
}

// Call calls the host API method (see docs/design.md, "Host API") with args, and decodes its
// result into result unless result is nil. The typed methods below call it.
func (h *Host) Call(ctx context.Context, method string, args, result interface{}) error {
	if h.calls == nil {
		return Errorf(CodeUnavailable, "the host API is not available before init")
	}
	data, err := json.Marshal(args)
	if err != nil {
		return Errorf(CodeInvalidArgument, "%s: the arguments are not JSON: %v", method, err)
	}
	request := &hostv1.HostCallRequest{Method: method, ArgsJson: data, Token: h.token}
	response, err := h.calls.call(ctx, request)
	if err != nil {
		// The host answers a host call in its response; an error means the call did not get there or
		// back, or the function's ctx ended first.
		code := CodeUnavailable
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			code = CodeDeadlineExceeded
		case errors.Is(err, context.Canceled):
			code = CodeCanceled
		}
		return Errorf(code, "host call %s failed: %v", method, err)
	}
	if len(response.ErrorJson) > 0 {
		failure := &Error{}
		if err := json.Unmarshal(response.ErrorJson, failure); err != nil || failure.Code == "" {
			return Errorf(CodeInternal, "host call %s failed without a readable error", method)
		}
		return failure
	}
	if result == nil || len(response.ResultJson) == 0 {
		return nil
	}
	if err := json.Unmarshal(response.ResultJson, result); err != nil {
		return Errorf(CodeInternal, "host call %s: unexpected result: %v", method, err)
	}
	return nil
}

// CacheGet reads key from the plugin's cache namespace (needs cache read); found is false when the
// key has no value.
func (h *Host) CacheGet(ctx context.Context, key string) (value []byte, found bool, err error) {
	var out struct {
		Value *[]byte `json:"value"`
	}
	if err := h.Call(ctx, "cache.get", map[string]string{"key": key}, &out); err != nil {
		return nil, false, err
	}
	if out.Value == nil {
		return nil, false, nil
	}
	return *out.Value, true, nil
}

// CacheSet stores value under key (needs cache write); a ttl of 0 keeps it until it is deleted or
// evicted, any other is rounded up to whole seconds.
func (h *Host) CacheSet(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	args := struct {
		Key        string `json:"key"`
		Value      []byte `json:"value"` // base64, as encoding/json writes []byte
		TTLSeconds int64  `json:"ttl_seconds,omitempty"`
	}{Key: key, Value: value, TTLSeconds: int64((ttl + time.Second - 1) / time.Second)}
	return h.Call(ctx, "cache.set", args, nil)
}

// CacheDelete removes key (needs cache write); deleted says whether it had a value.
func (h *Host) CacheDelete(ctx context.Context, key string) (deleted bool, err error) {
	var out struct {
		Deleted bool `json:"deleted"`
	}
	err = h.Call(ctx, "cache.delete", map[string]string{"key": key}, &out)
	return out.Deleted, err
}

// DBQuery runs a query with bound parameters (needs db read on every table it reads).
func (h *Host) DBQuery(ctx context.Context, sql string, args ...interface{}) ([]map[string]interface{}, error) {
	var out struct {
		Rows []map[string]interface{} `json:"rows"`
	}
	err := h.Call(ctx, "db.query", dbArgs(sql, args), &out)
	return out.Rows, err
}

// DBExec runs a statement with bound parameters (needs db write on every table it writes).
func (h *Host) DBExec(ctx context.Context, sql string, args ...interface{}) (rowsAffected int64, err error) {
	var out struct {
		RowsAffected int64 `json:"rows_affected"`
	}
	err = h.Call(ctx, "db.exec", dbArgs(sql, args), &out)
	return out.RowsAffected, err
}

func dbArgs(sql string, args []interface{}) interface{} {
	if args == nil {
		args = []interface{}{}
	}
	return map[string]interface{}{"sql": sql, "args": args}
}

// HTTPRequest is an HTTP request the host makes for the plugin.
type HTTPRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// HTTPResponse is the answer to an HTTPRequest.
type HTTPResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"`
}

// HTTPRequest makes request through the host (needs http on the URL's host; private addresses are
// refused unless granted by name).
func (h *Host) HTTPRequest(ctx context.Context, request HTTPRequest) (*HTTPResponse, error) {
	response := &HTTPResponse{}
	if err := h.Call(ctx, "http.request", request, response); err != nil {
		return nil, err
	}
	return response, nil
}

// Email is an email the host sends for the plugin; HTML is an optional alternative of Body.
type Email struct {
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Body    string   `json:"body"`
	HTML    string   `json:"html,omitempty"`
}

// EmailSend sends email (needs email on every recipient's domain).
func (h *Host) EmailSend(ctx context.Context, email Email) (messageID string, err error) {
	var out struct {
		MessageID string `json:"message_id"`
	}
	err = h.Call(ctx, "email.send", email, &out)
	return out.MessageID, err
}

// Log writes a line to the host's log, attributed to the plugin and this call; level is trace,
// debug, info, warn or error. (Lines the plugin writes with its hclog Logger reach the host too,
// without the call's attribution.)
func (h *Host) Log(ctx context.Context, level, message string, fields map[string]interface{}) error {
	args := map[string]interface{}{"level": level, "message": message}
	if fields != nil {
		args["fields"] = fields
	}
	return h.Call(ctx, "log", args, nil)
}

// ConfigGet decodes the host config value under key into value (needs config on the key).
func (h *Host) ConfigGet(ctx context.Context, key string, value interface{}) error {
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	if err := h.Call(ctx, "config.get", map[string]string{"key": key}, &out); err != nil {
		return err
	}
	if err := json.Unmarshal(out.Value, value); err != nil {
		return Errorf(CodeInvalidArgument, "config %s: %v", key, err)
	}
	return nil
}

// I18nTranslate translates key with args in the plugin's i18n namespace.
func (h *Host) I18nTranslate(ctx context.Context, key string, args ...interface{}) (string, error) {
	var out struct {
		Text string `json:"text"`
	}
	request := map[string]interface{}{"key": key}
	if len(args) > 0 {
		request["args"] = args
	}
	err := h.Call(ctx, "i18n.translate", request, &out)
	return out.Text, err
}

// PluginCall calls function fn of another plugin (needs plugin_call on its name) and decodes its
// result into result unless it is nil.
func (h *Host) PluginCall(ctx context.Context, plugin, fn string, args, result interface{}) error {
	return h.Call(ctx, "plugin.call", map[string]interface{}{"plugin": plugin, "fn": fn, "args": args}, result)
}

// EventsPublish publishes an event of eventType with data (needs events on the type).
func (h *Host) EventsPublish(ctx context.Context, eventType string, data interface{}) error {
	return h.Call(ctx, "events.publish", map[string]interface{}{"type": eventType, "data": data}, nil)
}
