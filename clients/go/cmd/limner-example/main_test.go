package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The example program itself, end to end against LIMNER_ADDR.
func TestExampleGeneratesAndSavesAnImage(t *testing.T) {
	t.Parallel()
	addr := os.Getenv("LIMNER_ADDR")
	if addr == "" {
		t.Skip("LIMNER_ADDR is not set: run against a server with LIMNER_ADDR=host:port go test ./...")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "example.png")
	var out bytes.Buffer
	args := []string{"-addr", addr, "-prompt", "an example", "-width", "64", "-height", "64", "-out", path}
	if err := run(ctx, args, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"job jobs/", "generating [", "completed: assets/"} {
		if !strings.Contains(text, want) {
			t.Fatalf("output lacks %q:\n%s", want, text)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
		t.Fatalf("no PNG saved: %v", err)
	}
}
