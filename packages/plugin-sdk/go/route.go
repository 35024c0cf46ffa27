package corral

import (
	"context"
	"encoding/json"
	"strings"
)

// RouteRequest is what the host calls a route's handler with: the HTTP request it received below
// /plugins/<name>, every text a string.
type RouteRequest struct {
	Method string `json:"method"`
	// Path is below the plugin's mount point, without the query.
	Path string `json:"path"`
	// Params are the route's :param values, decoded.
	Params map[string]string `json:"params"`
	// Query is decoded; a repeated parameter has its first value.
	Query map[string]string `json:"query"`
	// Headers have lower-case names; the user's credentials are left out.
	Headers map[string]string `json:"headers"`
	// Body is the body as UTF-8 text; "" when there is none.
	Body string `json:"body"`
	// User is the signed-in user; nil on a route without "auth".
	User *RouteUser `json:"user"`
}

// RouteUser is the signed-in user a route sees.
type RouteUser struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	Admin  bool     `json:"admin"`
}

// RouteResponse is what a route's handler may answer: Body sent with Status and Headers. (Any other
// result is sent as JSON with status 200, a string as HTML.)
type RouteResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// JSONRoute makes a route's handler of fn, a function that reads its arguments with call.Bind. The
// host calls a route's handler with the HTTP request (a RouteRequest), not with arguments: the
// handler JSONRoute makes calls fn with the request's query values, then its JSON body's fields,
// then its path's :params (a later one replacing an earlier of the same name), and answers with fn's
// result as JSON, status 200. An error fn returns is the response's status (its code's; for a code
// of the plugin's own, the HTTPStatus its registration declares). A body that is not a JSON object
// fails with CodeInvalidArgument before fn runs, and so does a call that is not a route's.
//
//	Routes: []corral.Route{{Method: "POST", Path: "/greet", Handler: "greetRoute", Middleware: []string{}}},
//	...
//	Functions: map[string]corral.Function{"greet": greet, "greetRoute": corral.JSONRoute(greet)},
func JSONRoute(fn Function) Function {
	return func(ctx context.Context, call *Call) (interface{}, error) {
		var request RouteRequest
		if err := json.Unmarshal(call.Args, &request); err != nil || request.Method == "" {
			return nil, Errorf(CodeInvalidArgument, "%s answers a route: it takes the HTTP request the host passes "+
				"({method, path, params, query, headers, body, user}); call the function it wraps with plain arguments", call.Function)
		}
		args := routeArgs{}
		for name, value := range request.Query {
			args.set(name, quoteJSON(value))
		}
		if strings.TrimSpace(request.Body) != "" {
			var fields map[string]json.RawMessage
			if err := json.Unmarshal([]byte(request.Body), &fields); err != nil || fields == nil {
				return nil, Errorf(CodeInvalidArgument, "the request body is not a JSON object")
			}
			for name, value := range fields {
				args.set(name, value)
			}
		}
		for name, value := range request.Params {
			args.set(name, quoteJSON(value))
		}
		routed := *call
		routed.Args, _ = json.Marshal(args.values)
		result, err := fn(ctx, &routed)
		if err != nil {
			return nil, err
		}
		body, err := json.Marshal(result)
		if err != nil {
			return nil, Errorf(CodePluginError, "%s returned a result that is not JSON: %v", call.Function, err)
		}
		return RouteResponse{
			Status:  200,
			Headers: map[string]string{"content-type": "application/json; charset=utf-8"},
			Body:    string(body),
		}, nil
	}
}

// routeArgs are a route's arguments by name. call.Bind (encoding/json) matches a name to a field
// regardless of case, and of two names that differ only in case the later in the JSON text wins,
// whatever order they were set in: so a name replaces any set before that differs from it only in
// case ("userid" in a body never outranks the path's "userId").
type routeArgs struct {
	values map[string]json.RawMessage
	// names is the name set last for each case-folded name.
	names map[string]string
}

func (a *routeArgs) set(name string, value json.RawMessage) {
	if a.values == nil {
		a.values, a.names = map[string]json.RawMessage{}, map[string]string{}
	}
	folded := strings.ToLower(strings.ToUpper(name))
	if earlier, ok := a.names[folded]; ok {
		delete(a.values, earlier)
	}
	a.names[folded] = name
	a.values[name] = value
}

// quoteJSON is text as a JSON string.
func quoteJSON(text string) json.RawMessage {
	quoted, _ := json.Marshal(text)
	return quoted
}
