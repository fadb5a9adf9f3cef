package limner_test

import (
	"context"
	"fmt"
	"log"

	"google.golang.org/protobuf/proto"

	limnerv1 "github.com/limner-dev/limner/clients/go/gen/limner/v1"
	"github.com/limner-dev/limner/clients/go/limner"
)

// The README's example: generate an image, print its progress, save it. (Compiled by
// go test, not run: it needs a server.)
func Example() {
	ctx := context.Background()
	client, err := limner.Dial("127.0.0.1:50051", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	request := &limnerv1.GenerateImageRequest{
		Prompt:  "a lighthouse at dusk",
		Options: &limnerv1.ImageOptions{Width: proto.Int32(512), Height: proto.Int32(512), Seed: proto.Int64(7)},
	}
	var asset string
	for event, err := range client.Generate(ctx, request, nil) {
		if err != nil {
			log.Fatal(err) // e.g. FAILED_PRECONDITION: see limner.FindDetail
		}
		switch e := event.GetEvent().(type) {
		case *limnerv1.JobEvent_Progress:
			fmt.Printf("%s %d/%d\n", e.Progress.GetStage(), e.Progress.GetStep(), e.Progress.GetTotalSteps())
		case *limnerv1.JobEvent_Completed:
			asset = e.Completed.GetImages()[0].GetAsset()
		case *limnerv1.JobEvent_Failed:
			log.Fatalf("job failed: %s", e.Failed.GetMessage())
		case *limnerv1.JobEvent_Cancelled:
			log.Fatalf("job cancelled: %s", e.Cancelled.GetReason())
		}
	}
	if _, err := client.DownloadAsset(ctx, asset, "lighthouse.png"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved", asset, "to lighthouse.png")
}
