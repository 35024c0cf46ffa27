// Package corral writes Corral plugins in Go: Serve runs a Plugin as a hashicorp/go-plugin gRPC
// plugin with Corral's handshake, and Host is the typed host API, reached over go-plugin's broker.
// Its import path is corral.dev/corral; build-plugin.sh, beside this file, builds a plugin with it.
//
//	corral.Serve(&corral.Plugin{
//		Registration: corral.Registration{}, // name, version and the rest: plugin.yaml's
//		Functions: map[string]corral.Function{
//			"greet": func(ctx context.Context, call *corral.Call) (interface{}, error) {
//				var args struct{ Name string }
//				if err := call.Bind(&args); err != nil {
//					return nil, err
//				}
//				return map[string]string{"message": "Hello, " + args.Name}, nil
//			},
//		},
//	})
package corral
