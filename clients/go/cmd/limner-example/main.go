// Command limner-example generates an image with a Limner server, prints the job's progress
// as it streams, and saves the result:
//
//	go run ./cmd/limner-example -addr 127.0.0.1:50051 -prompt "a lighthouse at dusk" -out lighthouse.png
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	limnerv1 "github.com/limner-dev/limner/clients/go/gen/limner/v1"
	"github.com/limner-dev/limner/clients/go/limner"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "limner-example:", describe(err))
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("limner-example", flag.ContinueOnError)
	addr := flags.String("addr", envOr("LIMNER_ADDR", "127.0.0.1:50051"), "server host:port (default $LIMNER_ADDR)")
	prompt := flags.String("prompt", "a lighthouse at dusk", "what to draw")
	model := flags.String("model", "", `model name, e.g. "models/offline-image" (default: the server's choice)`)
	width := flags.Int("width", 512, "image width")
	height := flags.Int("height", 512, "image height")
	seed := flags.Int64("seed", 7, "seed")
	output := flags.String("out", "limner-example.png", "where to save the image")
	apiKey := flags.String("api-key", os.Getenv("LIMNER_API_KEY"), "API key (default $LIMNER_API_KEY)")
	useTLS := flags.Bool("tls", false, "connect over TLS, trusting the system's CAs (implied by -ca-cert)")
	caCert := flags.String("ca-cert", os.Getenv("LIMNER_CA_CERT"), "PEM CA certificate that signed the server's certificate: connect over TLS (default $LIMNER_CA_CERT)")
	clientCert := flags.String("client-cert", os.Getenv("LIMNER_CLIENT_CERT"), "PEM client certificate for mTLS (default $LIMNER_CLIENT_CERT)")
	clientKey := flags.String("client-key", os.Getenv("LIMNER_CLIENT_KEY"), "the client certificate's PEM key (default $LIMNER_CLIENT_KEY)")
	if err := flags.Parse(args); err != nil {
		return err
	}

	options := &limner.Options{APIKey: *apiKey}
	if *useTLS || *caCert != "" || *clientCert != "" || *clientKey != "" {
		options.TLS = &limner.TLSConfig{CAFile: *caCert, CertFile: *clientCert, KeyFile: *clientKey}
	}
	client, err := limner.Dial(*addr, options)
	if err != nil {
		return err
	}
	defer client.Close()

	request := &limnerv1.GenerateImageRequest{
		Prompt: *prompt,
		Model:  *model,
		Options: &limnerv1.ImageOptions{
			Width: proto.Int32(int32(*width)), Height: proto.Int32(int32(*height)), Seed: proto.Int64(*seed),
		},
	}
	var result *limnerv1.JobResult
	for ev, err := range client.Generate(ctx, request, nil) {
		if err != nil {
			return err
		}
		switch e := ev.GetEvent().(type) {
		case *limnerv1.JobEvent_Snapshot:
			fmt.Fprintf(out, "job %s (%s)\n", e.Snapshot.GetName(), e.Snapshot.GetState())
		case *limnerv1.JobEvent_Progress:
			fmt.Fprintln(out, progressLine(e.Progress))
		case *limnerv1.JobEvent_Warning:
			fmt.Fprintf(out, "warning %s: %s\n", e.Warning.GetCode(), e.Warning.GetMessage())
		case *limnerv1.JobEvent_Completed:
			result = e.Completed
		case *limnerv1.JobEvent_Failed:
			return fmt.Errorf("job failed: %s", e.Failed.GetMessage())
		case *limnerv1.JobEvent_Cancelled:
			return fmt.Errorf("job cancelled: %s", e.Cancelled.GetReason())
		}
	}
	if result == nil || len(result.GetImages()) == 0 {
		return fmt.Errorf("the job ended without an image")
	}
	image := result.GetImages()[0]
	written, err := client.DownloadAsset(ctx, image.GetAsset(), *output)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "completed: %s %dx%d %s, %d bytes saved to %s\n",
		image.GetAsset(), image.GetWidth(), image.GetHeight(), image.GetMimeType(), written, *output)
	return nil
}

func progressLine(p *limnerv1.JobProgress) string {
	stage := strings.ToLower(strings.TrimPrefix(p.GetStage().String(), "JOB_STAGE_"))
	line := stage
	if total := p.GetTotalSteps(); total > 0 {
		line = fmt.Sprintf("%-10s", stage)
		const width = 20
		done := int(p.GetStep()) * width / int(total)
		line += fmt.Sprintf(" [%s%s] %d/%d", strings.Repeat("#", done), strings.Repeat(".", width-done), p.GetStep(), total)
	}
	if p.GetQueuePosition() > 0 {
		line += fmt.Sprintf(" queue position %d", p.GetQueuePosition())
	}
	if p.GetEta() != nil && p.GetTotalSteps() > 0 && p.GetStep() < p.GetTotalSteps() {
		line += fmt.Sprintf(" eta %.1fs", p.GetEta().AsDuration().Seconds())
	}
	return line
}

// describe adds a rich error's reason, e.g. "... (MODEL_CAPABILITY_UNSUPPORTED)".
func describe(err error) string {
	if info, ok := limner.FindDetail[*errdetails.ErrorInfo](err); ok {
		return fmt.Sprintf("%s: %s (%s)", status.Code(err), status.Convert(err).Message(), info.GetReason())
	}
	return err.Error()
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
