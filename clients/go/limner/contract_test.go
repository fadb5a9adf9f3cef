package limner_test

// Contract tests against a real Limner server at LIMNER_ADDR (host:port). tests/contract
// starts one with a slow offline provider (10 steps of 0.2 s) so a job is still running when
// a test drops its stream or cancels it. Without LIMNER_ADDR every test skips.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	limnerv1 "github.com/limner-dev/limner/clients/go/gen/limner/v1"
	"github.com/limner-dev/limner/clients/go/limner"
)

func serverAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("LIMNER_ADDR")
	if addr == "" {
		t.Skip("LIMNER_ADDR is not set: start a server (limner serve --address 127.0.0.1:50051) " +
			"and run LIMNER_ADDR=127.0.0.1:50051 go test ./...; tests/contract does this in CI")
	}
	return addr
}

func dial(t *testing.T, opts *limner.Options) *limner.Client {
	t.Helper()
	client, err := limner.Dial(serverAddr(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func request(prompt string, seed int64) *limnerv1.GenerateImageRequest {
	return &limnerv1.GenerateImageRequest{
		Prompt:  prompt,
		Options: &limnerv1.ImageOptions{Width: proto.Int32(96), Height: proto.Int32(64), Seed: proto.Int64(seed)},
	}
}

func kind(ev *limnerv1.JobEvent) string {
	switch ev.GetEvent().(type) {
	case *limnerv1.JobEvent_Snapshot:
		return "snapshot"
	case *limnerv1.JobEvent_Progress:
		return "progress"
	case *limnerv1.JobEvent_Preview:
		return "preview"
	case *limnerv1.JobEvent_Warning:
		return "warning"
	case *limnerv1.JobEvent_Heartbeat:
		return "heartbeat"
	case *limnerv1.JobEvent_Completed:
		return "completed"
	case *limnerv1.JobEvent_Failed:
		return "failed"
	case *limnerv1.JobEvent_Cancelled:
		return "cancelled"
	}
	return "other"
}

func sequences(events []*limnerv1.JobEvent) []int64 {
	var out []int64
	for _, ev := range events {
		if limner.IsLogged(ev) {
			out = append(out, ev.GetSequence())
		}
	}
	return out
}

// assertOneToN checks that logged sequences are exactly 1..n: nothing lost, nothing repeated.
func assertOneToN(t *testing.T, seqs []int64) {
	t.Helper()
	if len(seqs) == 0 {
		t.Fatal("no logged events")
	}
	for i, seq := range seqs {
		if seq != int64(i+1) {
			t.Fatalf("logged sequences are not 1..n (lost or repeated events): %v", seqs)
		}
	}
}

// midJob reports a GENERATING progress event with at least one step done and more to come.
func midJob(ev *limnerv1.JobEvent) bool {
	p := ev.GetProgress()
	return p.GetStage() == limnerv1.JobStage_JOB_STAGE_GENERATING && p.GetStep() >= 1 && p.GetStep() < p.GetTotalSteps()
}

func TestListModels(t *testing.T) {
	t.Parallel()
	client := dial(t, nil)
	response, err := client.Models.ListModels(testContext(t), &limnerv1.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, model := range response.GetModels() {
		names[model.GetName()] = true
	}
	if !names["models/offline-image"] || !names["models/offline-writer"] {
		t.Fatalf("built-in offline models missing from %v", names)
	}
}

func TestGenerateFollowsTheStreamToCompletion(t *testing.T) {
	t.Parallel()
	client := dial(t, nil)
	var events []*limnerv1.JobEvent
	for ev, err := range client.Generate(testContext(t), request("a lighthouse at dusk", 7), nil) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if kind(events[0]) != "snapshot" || kind(events[len(events)-1]) != "completed" {
		t.Fatalf("stream is not snapshot ... completed: first %s, last %s", kind(events[0]), kind(events[len(events)-1]))
	}
	assertOneToN(t, sequences(events))
	var steps, total []int32
	for _, ev := range events {
		if p := ev.GetProgress(); p.GetTotalSteps() > 0 {
			steps, total = append(steps, p.GetStep()), append(total, p.GetTotalSteps())
		}
	}
	if len(steps) < 2 || steps[len(steps)-1] != total[len(total)-1] {
		t.Fatalf("want step progress ending at the total, got steps %v of %v", steps, total)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i] < steps[i-1] {
			t.Fatalf("steps go backwards: %v", steps)
		}
	}
	image := events[len(events)-1].GetCompleted().GetImages()[0]
	if image.GetWidth() != 96 || image.GetHeight() != 64 || image.GetMimeType() != "image/png" || image.GetSeed() != 7 {
		t.Fatalf("unexpected image %v", image)
	}
}

func TestDroppedStreamResumesWithAfterSequence(t *testing.T) {
	t.Parallel()
	client := dial(t, nil)
	ctx := testContext(t)

	// Follow GenerateImage until the job is mid-render, then drop the stream.
	streamCtx, drop := context.WithCancel(ctx)
	stream, err := client.Images.GenerateImage(streamCtx, request("a dropped stream", 3))
	if err != nil {
		t.Fatal(err)
	}
	var before []*limnerv1.JobEvent
	for {
		response, err := stream.Recv()
		if err != nil {
			t.Fatalf("stream ended before the job was mid-render: %v", err)
		}
		before = append(before, response.GetEvent())
		if midJob(response.GetEvent()) {
			break
		}
	}
	drop()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("dropped stream: want CANCELED, got %v", err)
	}
	job := before[0].GetJob()
	seen := sequences(before)
	last := seen[len(seen)-1]

	// The job kept running; WatchJob(after_sequence) returns exactly the rest.
	var after []*limnerv1.JobEvent
	for ev, err := range client.WatchJob(ctx, job, &limner.WatchOptions{AfterSequence: last}) {
		if err != nil {
			t.Fatal(err)
		}
		after = append(after, ev)
	}
	if kind(after[0]) != "snapshot" || kind(after[len(after)-1]) != "completed" {
		t.Fatalf("resumed stream is not snapshot ... completed")
	}
	if len(sequences(after)) < 2 {
		t.Fatalf("the job finished before the drop (only %v after it): make the server slower", sequences(after))
	}
	assertOneToN(t, append(seen, sequences(after)...))
}

// dropAfter fails the first WatchJob stream with UNAVAILABLE after n messages, like a
// connection lost mid-job; later streams are untouched.
type dropAfter struct {
	n       int
	dropped atomic.Int32
	watches atomic.Int32
}

type droppingStream struct {
	grpc.ClientStream
	left int
}

func (s *droppingStream) RecvMsg(m any) error {
	if s.left == 0 {
		return status.Error(codes.Unavailable, "test: connection lost")
	}
	s.left--
	return s.ClientStream.RecvMsg(m)
}

func (d *dropAfter) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	stream, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != limnerv1.JobService_WatchJob_FullMethodName {
		return stream, err
	}
	d.watches.Add(1)
	if d.dropped.CompareAndSwap(0, 1) {
		return &droppingStream{ClientStream: stream, left: d.n}, nil
	}
	return stream, nil
}

func TestWatchJobResumesAfterUnavailable(t *testing.T) {
	t.Parallel()
	drops := &dropAfter{n: 4}
	client := dial(t, &limner.Options{DialOptions: []grpc.DialOption{grpc.WithChainStreamInterceptor(drops.intercept)}})
	ctx := testContext(t)

	// Create the job and leave its stream at once.
	streamCtx, drop := context.WithCancel(ctx)
	stream, err := client.Images.GenerateImage(streamCtx, request("a flaky network", 5))
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	drop()
	if err != nil {
		t.Fatal(err)
	}

	var events []*limnerv1.JobEvent
	for ev, err := range client.WatchJob(ctx, first.GetEvent().GetJob(), &limner.WatchOptions{Backoff: 10 * time.Millisecond}) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if drops.watches.Load() < 2 {
		t.Fatalf("WatchJob never resumed (%d streams): the job ended too soon", drops.watches.Load())
	}
	if kind(events[len(events)-1]) != "completed" {
		t.Fatalf("last event %s, want completed", kind(events[len(events)-1]))
	}
	assertOneToN(t, sequences(events))
}

func TestRichErrorDetails(t *testing.T) {
	t.Parallel()
	client := dial(t, nil)
	req := request("a cat", 1)
	req.Model = "models/offline-writer" // a text model: no image output
	var got error
	for _, err := range client.Generate(testContext(t), req, nil) {
		if err != nil {
			got = err
		}
	}
	if status.Code(got) != codes.FailedPrecondition {
		t.Fatalf("want FAILED_PRECONDITION, got %v", got)
	}
	info, ok := limner.FindDetail[*errdetails.ErrorInfo](got)
	if !ok {
		t.Fatalf("no ErrorInfo in %v", status.Convert(got).Details())
	}
	if info.GetReason() != "MODEL_CAPABILITY_UNSUPPORTED" || info.GetDomain() != "limner.dev" {
		t.Fatalf("ErrorInfo %v", info)
	}
	if info.GetMetadata()["capability"] != "image output" {
		t.Fatalf("ErrorInfo metadata %v lacks the missing capability", info.GetMetadata())
	}
	failure, ok := limner.FindDetail[*errdetails.PreconditionFailure](got)
	if !ok || len(failure.GetViolations()) != 1 {
		t.Fatalf("PreconditionFailure %v", failure)
	}
	violation := failure.GetViolations()[0]
	if violation.GetType() != "CAPABILITY" || violation.GetSubject() != "models/offline-writer" ||
		!strings.Contains(violation.GetDescription(), "image output") {
		t.Fatalf("violation %v", violation)
	}
}

func TestCancelJobEndsTheStreamWithCancelled(t *testing.T) {
	t.Parallel()
	client := dial(t, nil)
	ctx := testContext(t)
	var events []*limnerv1.JobEvent
	cancelled := false
	for ev, err := range client.Generate(ctx, request("a cancelled job", 9), nil) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
		if !cancelled && midJob(ev) {
			response, err := client.Jobs.CancelJob(ctx, &limnerv1.CancelJobRequest{Name: ev.GetJob()})
			if err != nil {
				t.Fatal(err)
			}
			if response.GetJob().GetState() != limnerv1.JobState_JOB_STATE_CANCELLED {
				t.Fatalf("CancelJob returned state %v", response.GetJob().GetState())
			}
			cancelled = true
		}
	}
	if !cancelled {
		t.Fatal("the job finished before it could be cancelled")
	}
	last := events[len(events)-1]
	if kind(last) != "cancelled" || last.GetCancelled().GetReason() == "" {
		t.Fatalf("last event %s %v, want cancelled with a reason", kind(last), last)
	}
	assertOneToN(t, sequences(events))
	_, err := client.Jobs.CancelJob(ctx, &limnerv1.CancelJobRequest{Name: last.GetJob()})
	if info, _ := limner.FindDetail[*errdetails.ErrorInfo](err); status.Code(err) != codes.FailedPrecondition || info.GetReason() != "JOB_NOT_CANCELLABLE" {
		t.Fatalf("cancelling twice: %v", err)
	}
}

func TestDownloadAndUploadAsset(t *testing.T) {
	t.Parallel()
	client := dial(t, nil)
	ctx := testContext(t)
	var result *limnerv1.JobResult
	for ev, err := range client.Generate(ctx, request("a downloaded fox", 11), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetCompleted() != nil {
			result = ev.GetCompleted()
		}
	}
	image := result.GetImages()[0]
	path := filepath.Join(t.TempDir(), "fox.png")
	written, err := client.DownloadAsset(ctx, image.GetAsset(), path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if written != image.GetSizeBytes() || int64(len(data)) != image.GetSizeBytes() {
		t.Fatalf("downloaded %d bytes (file %d), the result says %d", written, len(data), image.GetSizeBytes())
	}
	if image.GetAsset() != "assets/"+hex.EncodeToString(sum[:]) {
		t.Fatalf("asset %s does not name the sha256 of its content", image.GetAsset())
	}
	if _, err := os.Stat(path + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial file left behind: %v", err)
	}

	// Uploading the same bytes is deduplicated to the same content-addressed asset.
	uploaded, err := client.UploadImage(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if uploaded.GetAsset().GetName() != image.GetAsset() || uploaded.GetCreated() {
		t.Fatalf("upload of the same bytes: %v", uploaded)
	}

	_, err = client.DownloadAsset(ctx, "assets/"+strings.Repeat("0", 64), filepath.Join(t.TempDir(), "missing.png"))
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown asset: want NOT_FOUND, got %v", err)
	}
}
