package corral

import (
	"bufio"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"regexp"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Where the host runs a plugin without TLS it authenticates both ends with a fresh pair of secrets,
// written as the first line of the plugin's stdin (never its environment, which other processes of
// the user can read) when CORRAL_PEER_SECRETS is "stdin": the host presents its own on every call
// into the plugin, the plugin its own on every call to the host's broker services.
const (
	peerSecretsEnv         = "CORRAL_PEER_SECRETS"
	peerSecretMetadataKey  = "corral-peer-secret"
	peerSecretsLineMaxSize = 1024
)

// peerSecretsLine is two 256-bit secrets in base64url, separated by a space: the host's, the plugin's.
var peerSecretsLine = regexp.MustCompile(`^([A-Za-z0-9_-]{43}) ([A-Za-z0-9_-]{43})\r?\n?$`)

type peerSecrets struct {
	host, plugin string
}

// readPeerSecrets reads the secrets where the host says it sends them; nil where it does not.
func readPeerSecrets(stdin io.Reader) (*peerSecrets, error) {
	if os.Getenv(peerSecretsEnv) != "stdin" {
		return nil, nil
	}
	line, err := bufio.NewReaderSize(io.LimitReader(stdin, peerSecretsLineMaxSize), peerSecretsLineMaxSize).ReadString('\n')
	match := peerSecretsLine.FindStringSubmatch(line)
	if match == nil {
		return nil, fmt.Errorf("the host sent no peer secrets on stdin (%v)", err)
	}
	return &peerSecrets{host: match[1], plugin: match[2]}, nil
}

// serverOptions refuse, with Unauthenticated and before any handler runs, every call into the
// plugin (go-plugin's services and PluginService alike) that does not carry the host's secret.
func (s *peerSecrets) serverOptions() []grpc.ServerOption {
	check := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		given := md.Get(peerSecretMetadataKey)
		if len(given) != 1 || subtle.ConstantTimeCompare([]byte(given[0]), []byte(s.host)) != 1 {
			return status.Error(codes.Unauthenticated, "the caller did not present this connection's peer secret")
		}
		return nil
	}
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req interface{}, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv interface{}, stream grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := check(stream.Context()); err != nil {
				return err
			}
			return handler(srv, stream)
		}),
	}
}

// outgoing is ctx carrying the plugin's secret, for a call to the host; ctx itself without secrets.
func (s *peerSecrets) outgoing(ctx context.Context) context.Context {
	if s == nil {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, peerSecretMetadataKey, s.plugin)
}
