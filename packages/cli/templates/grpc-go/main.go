// __NAME__: greets people with the configured greeting and counts greetings per name in the host's
// cache. Built by `corral build` with the Go SDK (import path corral.dev/corral).
package main

import (
	"context"
	"fmt"
	"strconv"

	"corral.dev/corral"
)

// registration says what the plugin adds to the host; its name, version, description and license
// are plugin.yaml's. The host calls a route's handler with the HTTP request: greetRoute.
var registration = corral.Registration{
	Routes:     []corral.Route{{Method: "POST", Path: "/greet", Handler: "greetRoute", Middleware: []string{}}},
	ErrorCodes: []corral.ErrorCode{{Code: "missing_name", Message: "a name is required", HTTPStatus: 400}},
}

// config is the plugin's config, as its plugin.yaml's config_schema describes it.
type config struct {
	Greeting string `json:"greeting"`
}

var greeting = "Hello"

func initPlugin(ctx context.Context, init *corral.InitContext) error {
	c := config{Greeting: "Hello"}
	if err := init.Bind(&c); err != nil {
		return err
	}
	greeting = c.Greeting
	return nil
}

// greet: {"name": "Ada"} → {"message": "Hello, Ada!", "count": 1}; __NAME__:missing_name without a name.
func greet(ctx context.Context, call *corral.Call) (interface{}, error) {
	var args struct {
		Name string `json:"name"`
	}
	if err := call.Bind(&args); err != nil {
		return nil, err
	}
	if args.Name == "" {
		return nil, corral.Errorf("missing_name", `say who to greet: {"name": "..."}`)
	}
	key := "greetings:" + args.Name
	value, found, err := call.Host.CacheGet(ctx, key)
	if err != nil {
		return nil, err
	}
	count := 0
	if found {
		if count, err = strconv.Atoi(string(value)); err != nil {
			return nil, corral.Errorf(corral.CodeInternal, "%s holds no count: %v", key, err)
		}
	}
	count++
	if err := call.Host.CacheSet(ctx, key, []byte(strconv.Itoa(count)), 0); err != nil {
		return nil, err
	}
	return map[string]interface{}{"message": fmt.Sprintf("%s, %s!", greeting, args.Name), "count": count}, nil
}

func main() {
	functions := map[string]corral.Function{"greet": greet}
	// POST /plugins/__NAME__/greet with {"name": "Ada"}: the request's JSON body is greet's arguments,
	// greet's result the JSON response.
	functions["greetRoute"] = corral.JSONRoute(greet)
	corral.Serve(&corral.Plugin{
		Registration: registration,
		Init:         initPlugin,
		Functions:    functions,
	})
}
