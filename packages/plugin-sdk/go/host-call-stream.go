package corral

import (
	"context"
	"errors"
	"sync"

	hostv1 "corral.dev/corral/internal/hostv1"
)

// errHostStreamBroke fails the host calls that were waiting on a stream that broke.
var errHostStreamBroke = errors.New("the host call stream broke")

// hostCalls are the plugin's host calls on one HostService/CallStream, each tagged with an id: a
// unary Call costs a new HTTP/2 stream each way, several times a call on the stream (see
// docs/performance.md, grpc.host_call). The stream opens at the first host call, and again at the
// next after it breaks; a break fails the host calls waiting on it.
type hostCalls struct {
	client  hostv1.HostServiceClient
	secrets *peerSecrets

	mu      sync.Mutex
	stream  *hostStream
	nextID  uint32
	pending map[uint32]chan *hostv1.HostCallResponse
}

// hostStream is one open CallStream: its requests go out through one goroutine (grpc-go takes one
// Send at a time), so that a caller waits for its turn, not past its ctx, while the host reads no
// more of the stream (it does while the plugin has as many host calls running as it may).
type hostStream struct {
	outbox chan *hostv1.HostCallRequest
	// broken is closed once the stream has broken.
	broken chan struct{}
}

func newHostCalls(client hostv1.HostServiceClient, secrets *peerSecrets) *hostCalls {
	return &hostCalls{client: client, secrets: secrets, pending: map[uint32]chan *hostv1.HostCallResponse{}}
}

// call sends request and waits for its response, for ctx to end, or for the stream to break.
func (h *hostCalls) call(ctx context.Context, request *hostv1.HostCallRequest) (*hostv1.HostCallResponse, error) {
	h.mu.Lock()
	stream, err := h.open()
	if err != nil {
		h.mu.Unlock()
		return nil, err
	}
	id := h.nextID
	h.nextID++
	answer := make(chan *hostv1.HostCallResponse, 1)
	h.pending[id] = answer
	h.mu.Unlock()
	request.Id = id
	select {
	case stream.outbox <- request:
	case <-stream.broken:
		h.forget(id)
		return nil, errHostStreamBroke
	case <-ctx.Done():
		h.forget(id)
		return nil, ctx.Err()
	}
	select {
	case response, ok := <-answer:
		if !ok {
			return nil, errHostStreamBroke
		}
		return response, nil
	case <-ctx.Done():
		h.forget(id)
		return nil, ctx.Err()
	}
}

// open is the stream, opened if there is none; h.mu is held.
func (h *hostCalls) open() (*hostStream, error) {
	if h.stream != nil {
		return h.stream, nil
	}
	ctx, cancel := context.WithCancel(h.secrets.outgoing(context.Background()))
	stream, err := h.client.CallStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	opened := &hostStream{outbox: make(chan *hostv1.HostCallRequest), broken: make(chan struct{})}
	h.stream = opened
	go opened.send(stream, cancel)
	go h.receive(opened, stream, cancel)
	return opened, nil
}

// send writes the requests callers hand it until the stream breaks.
func (s *hostStream) send(stream hostv1.HostService_CallStreamClient, cancel context.CancelFunc) {
	for {
		select {
		case request := <-s.outbox:
			if stream.Send(request) != nil {
				cancel() // its Recv fails too, and receive cleans up
				return
			}
		case <-s.broken:
			return
		}
	}
}

// receive hands each response to its call until the stream breaks, then fails the calls left.
func (h *hostCalls) receive(opened *hostStream, stream hostv1.HostService_CallStreamClient, cancel context.CancelFunc) {
	defer cancel()
	for {
		response, err := stream.Recv()
		if err != nil {
			h.mu.Lock()
			if h.stream == opened {
				h.stream = nil
			}
			close(opened.broken)
			for id, answer := range h.pending {
				close(answer)
				delete(h.pending, id)
			}
			h.mu.Unlock()
			return
		}
		h.mu.Lock()
		answer, ok := h.pending[response.Id]
		delete(h.pending, response.Id)
		h.mu.Unlock()
		if ok {
			answer <- response
		}
	}
}

// forget drops call id: its caller no longer waits for it.
func (h *hostCalls) forget(id uint32) {
	h.mu.Lock()
	delete(h.pending, id)
	h.mu.Unlock()
}
