package corral

import (
	"context"
	"encoding/json"

	hclog "github.com/hashicorp/go-hclog"
)

// Plugin is a Corral plugin written in Go: what Serve runs. Only Registration and Functions are
// required.
type Plugin struct {
	// Registration is what Register answers.
	Registration Registration
	// Functions are the functions the host may call, by name.
	Functions map[string]Function
	// Init receives the plugin's config before any call; a failure leaves the plugin not ready.
	Init func(ctx context.Context, init *InitContext) error
	// Health reports readiness: nil is ready. Without it the plugin is ready once Init succeeded.
	Health func(ctx context.Context) error
	// Shutdown finishes pending work before the host stops the process; ctx ends at the host's
	// shutdown timeout.
	Shutdown func(ctx context.Context) error
}

// Function is a plugin function: it reads its JSON arguments from call and returns a result that
// encoding/json can write (nil for null), or an error (see Errorf) that fails the call. ctx ends
// at the call's deadline.
type Function func(ctx context.Context, call *Call) (interface{}, error)

// Call is one call of a plugin function.
type Call struct {
	// Function is the name the host called.
	Function string
	// Args is the arguments' JSON; empty for null.
	Args json.RawMessage
	// Token identifies the call; Host's calls carry it.
	Token string
	// Host is the host API, bound to this call.
	Host *Host
	// Log writes hclog JSON lines that the host logs as the plugin's.
	Log hclog.Logger
}

// Bind decodes the call's arguments into v; arguments that do not fit fail with
// CodeInvalidArgument. Null arguments leave v as it is.
func (c *Call) Bind(v interface{}) error {
	return bind(c.Args, v, "arguments")
}

// InitContext is what Init gets.
type InitContext struct {
	// Plugin is the plugin's name as the host knows it.
	Plugin string
	// Config is the plugin's config, a JSON object checked against its plugin.yaml's config_schema.
	Config json.RawMessage
	// Host is the host API, bound to the Init call.
	Host *Host
	// Log writes hclog JSON lines that the host logs as the plugin's.
	Log hclog.Logger
}

// Bind decodes the config into v, failing with CodeInvalidArgument where it does not fit.
func (i *InitContext) Bind(v interface{}) error {
	return bind(i.Config, v, "config")
}

func bind(data json.RawMessage, v interface{}, what string) error {
	if len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return Errorf(CodeInvalidArgument, "cannot read the %s: %v", what, err)
	}
	return nil
}
