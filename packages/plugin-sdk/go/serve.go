package corral

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	hostv1 "corral.dev/corral/internal/hostv1"
	pluginv1 "corral.dev/corral/internal/pluginv1"
	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Handshake is Corral's go-plugin handshake; the host checks the same values.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "CORRAL_PLUGIN",
	MagicCookieValue: "b6c1d0a4-corral-plugin",
}

// Serve runs p as a go-plugin gRPC plugin with Corral's handshake until the host stops it: it
// answers Register, Init, the host's calls (over one CallStream; unary Call too), Health and
// Shutdown, and reaches the host API over go-plugin's broker. Run by hand (without the host's
// magic cookie) it prints go-plugin's message and exits 1.
//
//	func main() {
//		corral.Serve(&corral.Plugin{
//			Registration: corral.Registration{}, // name, version and the rest: plugin.yaml's
//			Functions:    map[string]corral.Function{"greet": greet},
//		})
//	}
func Serve(p *Plugin) {
	// Made before go-plugin takes over os.Stderr: hclog JSON lines that the host reads as the plugin's.
	logger := hclog.New(&hclog.LoggerOptions{
		Name: p.Registration.Name, Output: os.Stderr, JSONFormat: true, Level: hclog.Info,
	})
	secrets, err := readPeerSecrets(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := goplugin.DefaultGRPCServer
	if secrets != nil {
		server = func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, secrets.serverOptions()...)...)
		}
	}
	config := &goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]goplugin.Plugin{"corral": &grpcPlugin{plugin: p, logger: logger, secrets: secrets}},
		GRPCServer:      server,
		Logger:          logger,
	}
	if hostPEM := os.Getenv(hostCertificateEnv); hostPEM != "" {
		mtls, err := newAutoMTLS(hostPEM)
		if err == nil {
			err = mtls.sendCertificateInHandshake()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		config.TLSProvider = func() (*tls.Config, error) { return mtls.config, nil }
	}
	goplugin.Serve(config)
}

// grpcPlugin is the go-plugin Plugin that serves PluginService (plugin side only).
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	plugin  *Plugin
	logger  hclog.Logger
	secrets *peerSecrets
}

func (g *grpcPlugin) GRPCServer(broker *goplugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterPluginServiceServer(s, &pluginServer{
		plugin: g.plugin, broker: broker, logger: g.logger, log: g.logger, secrets: g.secrets,
	})
	return nil
}

func (g *grpcPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("a Corral plugin serves PluginService; it is no client of it")
}

// pluginServer answers PluginService for one plugin.
type pluginServer struct {
	pluginv1.UnimplementedPluginServiceServer
	plugin  *Plugin
	broker  *goplugin.GRPCBroker
	logger  hclog.Logger
	secrets *peerSecrets

	mu sync.Mutex
	// name is the plugin's name as the host knows it (from Init): what its own error codes are
	// prefixed with, and what log names the logger its functions get.
	name      string
	log       hclog.Logger
	conn      *grpc.ClientConn
	host      *hostCalls
	ready     bool
	lastError *Error
}

func (s *pluginServer) Register(context.Context, *pluginv1.RegisterRequest) (*pluginv1.RegisterResponse, error) {
	data, err := json.Marshal(s.plugin.Registration)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "the registration is not JSON: %v", err)
	}
	return &pluginv1.RegisterResponse{RegistrationJson: data, CallStream: true}, nil
}

func (s *pluginServer) Init(ctx context.Context, req *pluginv1.InitRequest) (*pluginv1.InitResponse, error) {
	// A host that reattaches inits again with a new broker id: the old connection goes.
	conn, err := s.broker.Dial(req.HostBrokerId)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial the host service: %v", err)
	}
	host := newHostCalls(hostv1.NewHostServiceClient(conn), s.secrets)
	log := s.logger.ResetNamed(req.Plugin)
	s.mu.Lock()
	previous := s.conn
	s.name, s.log, s.conn, s.host, s.ready = req.Plugin, log, conn, host, false
	s.mu.Unlock()
	if previous != nil {
		previous.Close()
	}
	if s.plugin.Init != nil {
		init := &InitContext{
			Plugin: req.Plugin,
			Config: req.ConfigJson,
			Host:   &Host{calls: host, token: req.Token},
			Log:    log,
		}
		if err := s.plugin.Init(ctx, init); err != nil {
			return nil, rpcError(ctx, s.fail(err))
		}
	}
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	return &pluginv1.InitResponse{}, nil
}

// Call answers one call as a unary RPC: what a host that does not use CallStream sends.
func (s *pluginServer) Call(ctx context.Context, req *pluginv1.CallRequest) (*pluginv1.CallResult, error) {
	return s.result(ctx, req), nil
}

// result runs one call: its result as JSON, or its failure (recorded as the last one).
func (s *pluginServer) result(ctx context.Context, req *pluginv1.CallRequest) *pluginv1.CallResult {
	result, err := s.call(ctx, req)
	if err == nil {
		var data []byte
		if data, err = json.Marshal(result); err == nil {
			return &pluginv1.CallResult{ResultJson: data}
		}
		err = Errorf(CodePluginError, "%s returned a result that is not JSON: %v", req.Function, err)
	}
	data, _ := json.Marshal(s.fail(err))
	return &pluginv1.CallResult{ErrorJson: data}
}

func (s *pluginServer) call(ctx context.Context, req *pluginv1.CallRequest) (result interface{}, err error) {
	fn, ok := s.plugin.Functions[req.Function]
	if !ok {
		return nil, Errorf(CodeUnimplemented, "no function %q", req.Function)
	}
	// A panic fails its call only, as an exception does in the other SDKs: without this, grpc-go
	// would let it end the process and every call in flight beside it.
	defer func() {
		if recovered := recover(); recovered != nil {
			result, err = nil, Errorf(CodePluginError, "%s panicked: %v", req.Function, recovered)
		}
	}()
	s.mu.Lock()
	host, log := s.host, s.log
	s.mu.Unlock()
	return fn(ctx, &Call{
		Function: req.Function,
		Args:     req.ArgsJson,
		Token:    req.Token,
		Host:     &Host{calls: host, token: req.Token},
		Log:      log,
	})
}

// fail records err as the last failure (what Health reports) and returns it as it goes to the host.
func (s *pluginServer) fail(err error) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := s.name
	if name == "" {
		name = s.plugin.Registration.Name // before Init: the name the plugin gave itself, if any
	}
	failure := wireError(err, name)
	s.lastError = failure
	return failure
}

func (s *pluginServer) Health(ctx context.Context, _ *pluginv1.HealthRequest) (*pluginv1.HealthResponse, error) {
	s.mu.Lock()
	ready, lastError := s.ready, s.lastError
	s.mu.Unlock()
	response := &pluginv1.HealthResponse{Ready: ready}
	if !ready {
		response.Message = "not initialized"
	} else if s.plugin.Health != nil {
		if err := s.plugin.Health(ctx); err != nil {
			response.Ready = false
			response.Message = err.Error()
		}
	}
	if lastError != nil {
		response.LastErrorJson, _ = json.Marshal(lastError)
	}
	return response, nil
}

func (s *pluginServer) Shutdown(ctx context.Context, req *pluginv1.ShutdownRequest) (*pluginv1.ShutdownResponse, error) {
	if s.plugin.Shutdown == nil {
		return &pluginv1.ShutdownResponse{}, nil
	}
	if req.TimeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMs)*time.Millisecond)
		defer cancel()
	}
	if err := s.plugin.Shutdown(ctx); err != nil {
		return nil, rpcError(ctx, s.fail(err))
	}
	return &pluginv1.ShutdownResponse{}, nil
}
