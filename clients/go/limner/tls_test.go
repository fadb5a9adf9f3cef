package limner_test

// TLS and mTLS against real Limner servers. tests/contract starts two besides the plaintext
// one, with certificates it makes for the run, and passes them in:
//
//	LIMNER_TEST_TLS_ADDR      a server with a certificate signed by the test CA
//	LIMNER_TEST_MTLS_ADDR     the same, and it requires client certificates signed by that CA
//	LIMNER_TEST_CA_CERT       the test CA (PEM)
//	LIMNER_TEST_CLIENT_CERT   a client certificate signed by the test CA, and its key
//	LIMNER_TEST_CLIENT_KEY
//
// Without them the tests that need a server skip.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	limnerv1 "github.com/limner-dev/limner/clients/go/gen/limner/v1"
	"github.com/limner-dev/limner/clients/go/limner"
)

type tlsServers struct {
	addr, mtlsAddr, ca, cert, key string
}

func tlsEnv(t *testing.T) tlsServers {
	t.Helper()
	env := tlsServers{
		addr:     os.Getenv("LIMNER_TEST_TLS_ADDR"),
		mtlsAddr: os.Getenv("LIMNER_TEST_MTLS_ADDR"),
		ca:       os.Getenv("LIMNER_TEST_CA_CERT"),
		cert:     os.Getenv("LIMNER_TEST_CLIENT_CERT"),
		key:      os.Getenv("LIMNER_TEST_CLIENT_KEY"),
	}
	if env.addr == "" || env.mtlsAddr == "" || env.ca == "" || env.cert == "" || env.key == "" {
		t.Skip("LIMNER_TEST_TLS_ADDR, LIMNER_TEST_MTLS_ADDR, LIMNER_TEST_CA_CERT, " +
			"LIMNER_TEST_CLIENT_CERT and LIMNER_TEST_CLIENT_KEY are not all set: " +
			".venv/bin/pytest tests/contract starts TLS servers and sets them")
	}
	return env
}

func dialAddr(t *testing.T, addr string, opts *limner.Options) *limner.Client {
	t.Helper()
	client, err := limner.Dial(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func listModels(ctx context.Context, client *limner.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := client.Models.ListModels(ctx, &limnerv1.ListModelsRequest{})
	return err
}

func assertRefused(t *testing.T, client *limner.Client, why string) {
	t.Helper()
	err := listModels(context.Background(), client)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("%s: want UNAVAILABLE, got %v", why, err)
	}
}

func TestTLSGenerateWithACAFile(t *testing.T) {
	t.Parallel()
	env := tlsEnv(t)
	client := dialAddr(t, env.addr, &limner.Options{TLS: &limner.TLSConfig{CAFile: env.ca}})
	ctx := testContext(t)
	if err := listModels(ctx, client); err != nil {
		t.Fatal(err)
	}
	var events []*limnerv1.JobEvent
	for ev, err := range client.Generate(ctx, request("over TLS", 21), nil) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if kind(events[len(events)-1]) != "completed" {
		t.Fatalf("last event %s", kind(events[len(events)-1]))
	}
	assertOneToN(t, sequences(events))
}

func TestTLSRefusesPlaintextAndUntrustingClients(t *testing.T) {
	t.Parallel()
	env := tlsEnv(t)
	assertRefused(t, dialAddr(t, env.addr, nil), "a plaintext client")
	// The system's CAs did not sign the test server's certificate.
	assertRefused(t, dialAddr(t, env.addr, &limner.Options{TLS: &limner.TLSConfig{}}), "no CA file")
	// The right CA, but a name the certificate does not carry.
	wrongName := &limner.TLSConfig{CAFile: env.ca, ServerName: "limner.internal"}
	assertRefused(t, dialAddr(t, env.addr, &limner.Options{TLS: wrongName}), "another server name")
}

func TestMTLSWithAClientCertificate(t *testing.T) {
	t.Parallel()
	env := tlsEnv(t)
	config := &limner.TLSConfig{CAFile: env.ca, CertFile: env.cert, KeyFile: env.key}
	client := dialAddr(t, env.mtlsAddr, &limner.Options{TLS: config})
	if err := listModels(testContext(t), client); err != nil {
		t.Fatal(err)
	}
}

func TestMTLSRefusesAClientWithoutACertificate(t *testing.T) {
	t.Parallel()
	env := tlsEnv(t)
	client := dialAddr(t, env.mtlsAddr, &limner.Options{TLS: &limner.TLSConfig{CAFile: env.ca}})
	assertRefused(t, client, "no client certificate")
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		opts *limner.Options
		want string
	}{
		{"missing CA file", &limner.Options{TLS: &limner.TLSConfig{CAFile: missing}}, missing},
		{"CA file not PEM", &limner.Options{TLS: &limner.TLSConfig{CAFile: notPEM}}, "holds no PEM certificate"},
		{"certificate without key", &limner.Options{TLS: &limner.TLSConfig{CertFile: notPEM}}, "set both CertFile and KeyFile"},
		{"bad key pair", &limner.Options{TLS: &limner.TLSConfig{CertFile: notPEM, KeyFile: notPEM}}, "TLS client certificate"},
		{"TLS and TransportCredentials", &limner.Options{
			TLS: &limner.TLSConfig{}, TransportCredentials: mustCredentials(t),
		}, "not both"},
	}
	for _, c := range cases {
		_, err := limner.Dial("127.0.0.1:1", c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want an error containing %q, got %v", c.name, c.want, err)
		}
	}
}

func mustCredentials(t *testing.T) credentials.TransportCredentials {
	t.Helper()
	creds, err := (&limner.TLSConfig{}).Credentials()
	if err != nil {
		t.Fatal(err)
	}
	return creds
}
