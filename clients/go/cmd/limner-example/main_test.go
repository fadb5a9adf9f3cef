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

// The example with -ca-cert, -client-cert and -client-key against a server that requires
// client certificates (tests/contract sets LIMNER_TEST_MTLS_ADDR and the files).
func TestExampleOverMutualTLS(t *testing.T) {
	t.Parallel()
	addr, ca := os.Getenv("LIMNER_TEST_MTLS_ADDR"), os.Getenv("LIMNER_TEST_CA_CERT")
	cert, key := os.Getenv("LIMNER_TEST_CLIENT_CERT"), os.Getenv("LIMNER_TEST_CLIENT_KEY")
	if addr == "" || ca == "" || cert == "" || key == "" {
		t.Skip("LIMNER_TEST_MTLS_ADDR, LIMNER_TEST_CA_CERT, LIMNER_TEST_CLIENT_CERT and " +
			"LIMNER_TEST_CLIENT_KEY are not all set: .venv/bin/pytest tests/contract sets them")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "example.png")
	var out bytes.Buffer
	args := []string{
		"-addr", addr, "-ca-cert", ca, "-client-cert", cert, "-client-key", key,
		"-prompt", "over mTLS", "-width", "64", "-height", "64", "-out", path,
	}
	if err := run(ctx, args, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "completed: assets/") {
		t.Fatalf("output lacks the result:\n%s", out.String())
	}
}
