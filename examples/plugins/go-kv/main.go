// go-kv: a Corral plugin written in Go with hashicorp/go-plugin's gRPC mode. A key-value store
// kept in the host's cache (through HostService, over go-plugin's broker), so that it holds no
// state of its own and survives restarts, and a dashboard widget.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	hostv1 "corral.dev/gokv/hostv1"
	pluginv1 "corral.dev/gokv/pluginv1"
	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Corral's handshake: the same on the host side.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "CORRAL_PLUGIN",
	MagicCookieValue: "b6c1d0a4-corral-plugin",
}

var registration = map[string]interface{}{
	"name":        "go-kv",
	"version":     "0.1.0",
	"description": "A key-value store backed by the host's cache, written in Go.",
	"license":     "MPL-2.0",
	"routes": []map[string]interface{}{
		{"method": "GET", "path": "/kv/:key", "handler": "get", "middleware": []string{"auth"}},
		{"method": "PUT", "path": "/kv/:key", "handler": "set", "middleware": []string{"auth"}},
		{"method": "DELETE", "path": "/kv/:key", "handler": "delete", "middleware": []string{"auth"}},
	},
	"menu_items": []interface{}{},
	"widgets": []map[string]interface{}{
		{"id": "go-kv-about", "title": "Key-value store", "handler": "widget", "size": "small"},
	},
	"jobs":              []interface{}{},
	"templates":         []interface{}{},
	"error_codes":       []map[string]interface{}{{"code": "bad_key", "message": "a key is required", "http_status": 400}},
	"groups":            []interface{}{},
	"hidden_menu_items": []interface{}{},
	"permissions": []map[string]interface{}{
		{"type": "cache", "access": []string{"read", "write"}, "scope": []string{"kv:*"}},
	},
}

// corralError is a PluginErrorData: how a failed call travels back to the host.
type corralError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *corralError) Error() string { return e.Code + ": " + e.Message }

type kvServer struct {
	broker *plugin.GRPCBroker
	logger hclog.Logger

	mu   sync.Mutex
	host hostv1.HostServiceClient
}

func (s *kvServer) Register(ctx context.Context, req *pluginv1.RegisterRequest) (*pluginv1.RegisterResponse, error) {
	data, err := json.Marshal(registration)
	if err != nil {
		return nil, err
	}
	// Unary calls only: the host then makes each call as a unary Call.
	return &pluginv1.RegisterResponse{RegistrationJson: data}, nil
}

func (s *kvServer) Init(ctx context.Context, req *pluginv1.InitRequest) (*pluginv1.InitResponse, error) {
	conn, err := s.broker.Dial(req.HostBrokerId)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial the host service: %v", err)
	}
	s.mu.Lock()
	s.host = hostv1.NewHostServiceClient(conn)
	s.mu.Unlock()
	s.logger.Info("initialised", "plugin", req.Plugin)
	return &pluginv1.InitResponse{}, nil
}

type kvArgs struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

func (s *kvServer) Call(ctx context.Context, req *pluginv1.CallRequest) (*pluginv1.CallResult, error) {
	result, err := s.call(ctx, req)
	if err != nil {
		failure, ok := err.(*corralError)
		if !ok {
			failure = &corralError{Code: "plugin_error", Message: err.Error()}
		}
		data, _ := json.Marshal(failure)
		return &pluginv1.CallResult{ErrorJson: data}, nil
	}
	data, err := json.Marshal(result)
	if err != nil {
		return nil, err
	}
	return &pluginv1.CallResult{ResultJson: data}, nil
}

// widgetHTML is the dashboard widget: it needs no key and no host call.
const widgetHTML = `<p>Keys in the host's cache, written in Go: <code>GET</code>, <code>PUT</code> and ` +
	`<code>DELETE</code> <code>/plugins/go-kv/kv/:key</code>.</p>`

func (s *kvServer) call(ctx context.Context, req *pluginv1.CallRequest) (interface{}, error) {
	if req.Function == "widget" {
		return widgetHTML, nil
	}
	var args kvArgs
	if len(req.ArgsJson) > 0 {
		if err := json.Unmarshal(req.ArgsJson, &args); err != nil {
			return nil, &corralError{Code: "invalid_argument", Message: err.Error()}
		}
	}
	if args.Key == "" {
		return nil, &corralError{Code: "go-kv:bad_key", Message: "a key is required"}
	}
	key := "kv:" + args.Key
	switch req.Function {
	case "get":
		var out struct {
			Value *string `json:"value"`
		}
		if err := s.hostCall(ctx, req.Token, "cache.get", map[string]interface{}{"key": key}, &out); err != nil {
			return nil, err
		}
		if out.Value == nil {
			return map[string]interface{}{"key": args.Key, "value": nil}, nil
		}
		raw, err := base64.StdEncoding.DecodeString(*out.Value)
		if err != nil {
			return nil, err
		}
		return map[string]interface{}{"key": args.Key, "value": string(raw)}, nil
	case "set":
		if args.Value == nil {
			return nil, &corralError{Code: "invalid_argument", Message: "set needs a value"}
		}
		value := base64.StdEncoding.EncodeToString([]byte(*args.Value))
		if err := s.hostCall(ctx, req.Token, "cache.set", map[string]interface{}{"key": key, "value": value}, nil); err != nil {
			return nil, err
		}
		return map[string]interface{}{"ok": true}, nil
	case "delete":
		var out struct {
			Deleted bool `json:"deleted"`
		}
		if err := s.hostCall(ctx, req.Token, "cache.delete", map[string]interface{}{"key": key}, &out); err != nil {
			return nil, err
		}
		return map[string]interface{}{"deleted": out.Deleted}, nil
	}
	return nil, &corralError{Code: "unimplemented", Message: fmt.Sprintf("no function %q", req.Function)}
}

// hostCall calls the host API; a refusal comes back as the host's own error, code and all.
func (s *kvServer) hostCall(ctx context.Context, token, method string, args interface{}, out interface{}) error {
	s.mu.Lock()
	host := s.host
	s.mu.Unlock()
	if host == nil {
		return &corralError{Code: "unavailable", Message: "the host API is not available before init"}
	}
	data, err := json.Marshal(args)
	if err != nil {
		return err
	}
	resp, err := host.Call(ctx, &hostv1.HostCallRequest{Method: method, ArgsJson: data, Token: token})
	if err != nil {
		return &corralError{Code: "unavailable", Message: err.Error()}
	}
	if len(resp.ErrorJson) > 0 {
		var failure corralError
		if err := json.Unmarshal(resp.ErrorJson, &failure); err != nil {
			return err
		}
		return &failure
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(resp.ResultJson, out)
}

func (s *kvServer) CallStream(stream pluginv1.PluginService_CallStreamServer) error {
	return status.Error(codes.Unimplemented, "go-kv makes unary calls only")
}

func (s *kvServer) Health(ctx context.Context, req *pluginv1.HealthRequest) (*pluginv1.HealthResponse, error) {
	s.mu.Lock()
	ready := s.host != nil
	s.mu.Unlock()
	return &pluginv1.HealthResponse{Ready: ready}, nil
}

func (s *kvServer) Shutdown(ctx context.Context, req *pluginv1.ShutdownRequest) (*pluginv1.ShutdownResponse, error) {
	s.logger.Info("shutting down")
	return &pluginv1.ShutdownResponse{}, nil
}

// kvPlugin is the go-plugin Plugin that serves PluginService.
type kvPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	logger hclog.Logger
}

func (p *kvPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterPluginServiceServer(s, &kvServer{broker: broker, logger: p.logger})
	return nil
}

func (p *kvPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return pluginv1.NewPluginServiceClient(c), nil
}

func main() {
	// Made before Serve takes over os.Stderr: hclog JSON lines the host reads.
	logger := hclog.New(&hclog.LoggerOptions{Name: "go-kv", Output: os.Stderr, JSONFormat: true, Level: hclog.Info})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         map[string]plugin.Plugin{"corral": &kvPlugin{logger: logger}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
}
