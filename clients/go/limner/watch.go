package limner

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	limnerv1 "github.com/limner-dev/limner/clients/go/gen/limner/v1"
)

// WatchOptions tunes WatchJob and Generate. The zero value (or nil) is fine.
type WatchOptions struct {
	// AfterSequence starts the watch after this logged event (0: from the beginning).
	AfterSequence int64
	// MaxRetries is how many times in a row a dropped stream is resumed before the error is
	// returned; default 8. Any event received resets the count.
	MaxRetries int
	// Backoff is the first pause before resuming; it doubles on each consecutive retry.
	// Default 200 ms.
	Backoff time.Duration
}

func (o *WatchOptions) withDefaults() WatchOptions {
	var w WatchOptions
	if o != nil {
		w = *o
	}
	if w.MaxRetries == 0 {
		w.MaxRetries = 8
	}
	if w.Backoff == 0 {
		w.Backoff = 200 * time.Millisecond
	}
	return w
}

// IsTerminal reports whether ev ends its job's stream (completed, failed or cancelled).
func IsTerminal(ev *limnerv1.JobEvent) bool {
	switch ev.GetEvent().(type) {
	case *limnerv1.JobEvent_Completed, *limnerv1.JobEvent_Failed, *limnerv1.JobEvent_Cancelled:
		return true
	}
	return false
}

// IsLogged reports whether ev is an entry of the job's event log, numbered by Sequence
// (1, 2, 3, ...). Transient events (snapshots, heartbeats, queue positions) describe the
// current state instead: they are sent again on every (re)connection and carry the latest
// logged sequence, so they are never deduplicated or resumed from.
func IsLogged(ev *limnerv1.JobEvent) bool {
	switch ev.GetEvent().(type) {
	case *limnerv1.JobEvent_Snapshot, *limnerv1.JobEvent_Heartbeat, nil:
		return false
	}
	return !ev.GetTransient()
}

// errNoTerminalEvent marks a stream that ended cleanly before its job's terminal event.
var errNoTerminalEvent = status.Error(codes.Unavailable, "limner: job stream ended before a terminal event")

// resumable reports whether a watch may be resumed after err: the server or the network
// dropped the stream (UNAVAILABLE, including a server cutting an old connection), as opposed
// to a real answer such as NOT_FOUND or a cancelled context.
func resumable(err error) bool {
	return status.Code(err) == codes.Unavailable
}

// WatchJob follows job (e.g. "jobs/123") until its terminal event. When the stream drops
// (UNAVAILABLE, or it ends without a terminal event) it reconnects with
// after_sequence = the last logged event seen, so every logged event is yielded exactly once
// and in order. Each (re)connection also yields a snapshot first; transient events
// (heartbeats, queue positions) pass through.
// A non-nil error ends the sequence:
//
//	for ev, err := range client.WatchJob(ctx, "jobs/123", nil) {
//		if err != nil { return err }
//		fmt.Println(ev.GetSequence(), ev.GetProgress().GetStage())
//	}
func (c *Client) WatchJob(ctx context.Context, job string, opts *WatchOptions) iter.Seq2[*limnerv1.JobEvent, error] {
	o := opts.withDefaults()
	return func(yield func(*limnerv1.JobEvent, error) bool) {
		f := follower{client: c, job: job, last: o.AfterSequence, opts: o}
		f.run(ctx, yield)
	}
}

// Generate starts a GenerateImage job and follows it to its terminal event, like
// GenerateImage on Client.Images but robust to a dropped stream: it resumes with WatchJob
// from the last logged event. If req has no request_id, a random one is set first, so that
// re-sending the request after a drop before the job's first event returns the same job.
func (c *Client) Generate(ctx context.Context, req *limnerv1.GenerateImageRequest, opts *WatchOptions) iter.Seq2[*limnerv1.JobEvent, error] {
	o := opts.withDefaults()
	if req.GetRequestId() == "" {
		req.RequestId = NewRequestID()
	}
	return func(yield func(*limnerv1.JobEvent, error) bool) {
		f := follower{client: c, last: o.AfterSequence, opts: o,
			create: func(ctx context.Context) (func() (*limnerv1.JobEvent, error), error) {
				stream, err := c.Images.GenerateImage(ctx, req)
				if err != nil {
					return nil, err
				}
				return func() (*limnerv1.JobEvent, error) {
					response, err := stream.Recv()
					return response.GetEvent(), err
				}, nil
			}}
		f.run(ctx, yield)
	}
}

type opener func(ctx context.Context) (func() (*limnerv1.JobEvent, error), error)

type follower struct {
	client *Client
	job    string
	last   int64
	opts   WatchOptions
	create opener // the creating RPC, re-sent until the job's name is known
}

func (f *follower) watch(ctx context.Context) (func() (*limnerv1.JobEvent, error), error) {
	stream, err := f.client.Jobs.WatchJob(ctx, &limnerv1.WatchJobRequest{Name: f.job, AfterSequence: f.last})
	if err != nil {
		return nil, err
	}
	return func() (*limnerv1.JobEvent, error) {
		response, err := stream.Recv()
		return response.GetEvent(), err
	}, nil
}

func (f *follower) run(ctx context.Context, yield func(*limnerv1.JobEvent, error) bool) {
	retries := 0
	for {
		done, err := f.attempt(ctx, yield, &retries)
		if done {
			return
		}
		if errors.Is(err, io.EOF) {
			err = errNoTerminalEvent
		}
		if !resumable(err) || retries >= f.opts.MaxRetries || ctx.Err() != nil {
			yield(nil, err)
			return
		}
		pause := f.opts.Backoff << retries
		retries++
		select {
		case <-ctx.Done():
			yield(nil, status.FromContextError(ctx.Err()).Err())
			return
		case <-time.After(pause):
		}
	}
}

// attempt runs one stream. done means the caller stopped or the terminal event was yielded.
func (f *follower) attempt(ctx context.Context, yield func(*limnerv1.JobEvent, error) bool, retries *int) (bool, error) {
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream's RPC whenever we leave it
	open := f.watch
	if f.job == "" && f.create != nil {
		open = f.create
	}
	recv, err := open(streamCtx)
	if err != nil {
		return false, err
	}
	for {
		ev, err := recv()
		if err != nil {
			return false, err
		}
		if f.job == "" {
			f.job = ev.GetJob()
		}
		if IsLogged(ev) {
			if ev.GetSequence() <= f.last {
				continue // already yielded before the drop
			}
			f.last = ev.GetSequence()
		}
		*retries = 0
		if !yield(ev, nil) || IsTerminal(ev) {
			return true, nil
		}
	}
}
