package corral

import (
	"context"
	"io"
	"sync"
	"time"

	pluginv1 "corral.dev/corral/internal/pluginv1"
)

const (
	// resultBatchBytes is the most a batch of results holds before it leaves (@corral/proto's
	// resultBatchBytes): the host refuses a message above max(max_output_bytes, this), so only a
	// result too large on its own is refused.
	resultBatchBytes = 256 << 10
	// resultEnvelopeBytes is what a result costs in a batch besides its JSON: its id and framing.
	resultEnvelopeBytes = 16
)

// CallStream serves every call of the host over one stream, as the host makes them when Register
// says so: each request runs in a goroutine of its own under a context that its timeout_ms bounds
// and that the host's cancel, or the stream's end, cancels. Whatever results are ready leave
// together as one batch; the result of a canceled call is not sent. A unary Call costs a new HTTP/2
// stream each way; this costs one message per batch.
func (s *pluginServer) CallStream(stream pluginv1.PluginService_CallStreamServer) error {
	ctx, cancelAll := context.WithCancel(stream.Context())
	calls := newRunningCalls()
	results := make(chan *pluginv1.CallResult, 64)
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		sendResults(ctx, stream, results)
	}()
	// grpc-go takes no Send once the handler has returned: the writer ends first.
	defer func() {
		cancelAll()
		<-sending
	}()
	for {
		batch, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for _, req := range batch.Requests {
			if req.Cancel {
				calls.end(req.Id)
				continue
			}
			callCtx, cancel := callContext(ctx, req.TimeoutMs)
			if !calls.start(req.Id, cancel) {
				cancel() // the host never reuses an id in flight: a second one is dropped
				continue
			}
			go func(req *pluginv1.CallRequest) {
				result := s.result(callCtx, req)
				result.Id = req.Id
				if !calls.end(req.Id) {
					return // canceled: the host no longer waits for it
				}
				select {
				case results <- result:
				case <-ctx.Done():
				}
			}(req)
		}
	}
}

// callContext is a call's context: bounded by its own timeout, if it has one.
func callContext(parent context.Context, timeoutMs uint32) (context.Context, context.CancelFunc) {
	if timeoutMs == 0 {
		return context.WithCancel(parent)
	}
	return context.WithTimeout(parent, time.Duration(timeoutMs)*time.Millisecond)
}

// sendResults writes results as they come, each batch holding what is ready, until ctx ends or a
// send fails (the stream is broken: its Recv fails too). It is the stream's only writer (grpc-go
// takes one Send at a time).
func sendResults(ctx context.Context, stream pluginv1.PluginService_CallStreamServer, results <-chan *pluginv1.CallResult) {
	var batch []*pluginv1.CallResult
	bytes := 0
	flush := func() error {
		err := stream.Send(&pluginv1.ResultBatch{Results: batch})
		batch, bytes = nil, 0
		return err
	}
	for {
		var result *pluginv1.CallResult
		select {
		case result = <-results:
		case <-ctx.Done():
			return
		}
		for result != nil {
			size := len(result.ResultJson) + len(result.ErrorJson) + resultEnvelopeBytes
			if bytes > 0 && bytes+size > resultBatchBytes {
				if flush() != nil {
					return
				}
			}
			batch = append(batch, result)
			bytes += size
			select {
			case result = <-results:
			default:
				result = nil
			}
		}
		if flush() != nil {
			return
		}
	}
}

// runningCalls are the calls of one stream in flight, by id, with what cancels each.
type runningCalls struct {
	mu   sync.Mutex
	byID map[uint32]context.CancelFunc
}

func newRunningCalls() *runningCalls {
	return &runningCalls{byID: map[uint32]context.CancelFunc{}}
}

// start records call id; false if a call of that id is already in flight.
func (c *runningCalls) start(id uint32, cancel context.CancelFunc) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, taken := c.byID[id]; taken {
		return false
	}
	c.byID[id] = cancel
	return true
}

// end forgets call id and cancels its context, whether the call finished or the host canceled it;
// false if it had ended already (a call the host canceled sends no result).
func (c *runningCalls) end(id uint32) bool {
	c.mu.Lock()
	cancel, ok := c.byID[id]
	delete(c.byID, id)
	c.mu.Unlock()
	if ok {
		cancel()
	}
	return ok
}
