// go-kv: a Corral plugin written in Go with the SDK (corral.dev/corral). A key-value store kept in
// the host's cache, so that it holds no state of its own and survives restarts, and a dashboard
// widget.
package main

import (
	"context"

	"corral.dev/corral"
)

// registration says what the plugin adds to the host; its name, version, description and license
// are plugin.yaml's.
var registration = corral.Registration{
	// A route's handler gets the HTTP request: the *Route functions (corral.JSONRoute) hand get, set
	// and delete the key from the path and the value from a JSON body, {"value": "..."}.
	Routes: []corral.Route{
		{Method: "GET", Path: "/kv/:key", Handler: "getRoute", Middleware: []string{"auth"}},
		{Method: "PUT", Path: "/kv/:key", Handler: "setRoute", Middleware: []string{"auth"}},
		{Method: "DELETE", Path: "/kv/:key", Handler: "deleteRoute", Middleware: []string{"auth"}},
	},
	Widgets: []corral.Widget{
		{ID: "go-kv-about", Title: "Key-value store", Handler: "widget", Size: "small"},
	},
	ErrorCodes: []corral.ErrorCode{{Code: "bad_key", Message: "a key is required", HTTPStatus: 400}},
	Permissions: []corral.Permission{
		{Type: "cache", Access: []string{"read", "write"}, Scope: []string{"kv:*"}},
	},
}

type kvArgs struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

// keyOf reads the call's key, as it is stored in the cache.
func keyOf(call *corral.Call) (kvArgs, string, error) {
	var args kvArgs
	if err := call.Bind(&args); err != nil {
		return args, "", err
	}
	if args.Key == "" {
		return args, "", corral.Errorf("bad_key", "a key is required")
	}
	return args, "kv:" + args.Key, nil
}

func get(ctx context.Context, call *corral.Call) (interface{}, error) {
	args, key, err := keyOf(call)
	if err != nil {
		return nil, err
	}
	value, found, err := call.Host.CacheGet(ctx, key)
	if err != nil || !found {
		return map[string]interface{}{"key": args.Key, "value": nil}, err
	}
	return map[string]interface{}{"key": args.Key, "value": string(value)}, nil
}

func set(ctx context.Context, call *corral.Call) (interface{}, error) {
	args, key, err := keyOf(call)
	if err != nil {
		return nil, err
	}
	if args.Value == nil {
		return nil, corral.Errorf(corral.CodeInvalidArgument, "set needs a value")
	}
	if err := call.Host.CacheSet(ctx, key, []byte(*args.Value), 0); err != nil {
		return nil, err
	}
	return map[string]bool{"ok": true}, nil
}

func del(ctx context.Context, call *corral.Call) (interface{}, error) {
	_, key, err := keyOf(call)
	if err != nil {
		return nil, err
	}
	deleted, err := call.Host.CacheDelete(ctx, key)
	return map[string]bool{"deleted": deleted}, err
}

// widget is the dashboard widget: it needs no key and no host call.
func widget(context.Context, *corral.Call) (interface{}, error) {
	return `<p>Keys in the host's cache, written in Go: <code>GET</code>, <code>PUT</code> and ` +
		`<code>DELETE</code> <code>/plugins/go-kv/kv/:key</code>.</p>`, nil
}

func main() {
	corral.Serve(&corral.Plugin{
		Registration: registration,
		Functions: map[string]corral.Function{
			"get": get, "set": set, "delete": del, "widget": widget,
			"getRoute": corral.JSONRoute(get), "setRoute": corral.JSONRoute(set), "deleteRoute": corral.JSONRoute(del),
		},
		Init: func(ctx context.Context, init *corral.InitContext) error {
			init.Log.Info("initialised", "plugin", init.Plugin)
			return nil
		},
	})
}
