// Package limner is the hand-written layer over the generated limner.v1 stubs (package
// limnerv1 in ../gen/limner/v1): a connection with keepalive and default deadlines, a job
// watcher that resumes after a dropped stream without losing or repeating an event, and
// helpers to upload an image and download an asset to a file.
//
// Everything else is the generated API: Client.Images, Client.Jobs, Client.Models,
// Client.Scenes and Client.DesignReferences are the plain gRPC stubs.
package limner

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	// Registers google.rpc.ErrorInfo, PreconditionFailure, BadRequest, RetryInfo, ... so that
	// status.Convert(err).Details() and FindDetail can decode a Limner error's details.
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	limnerv1 "github.com/limner-dev/limner/clients/go/gen/limner/v1"
)

// Defaults used when the matching Options field is zero.
const (
	DefaultUnaryTimeout     = 30 * time.Second
	DefaultMaxMessageBytes  = 32 << 20
	DefaultKeepaliveTime    = 30 * time.Second
	DefaultKeepaliveTimeout = 10 * time.Second
)

// KeepaliveConfig controls the client's HTTP/2 pings, which detect a dead connection under a
// long, quiet watch stream. Time must not be below the server's
// grpc.min_ping_interval_without_data_ms (10 s by default), or the server answers GOAWAY
// ("too many pings").
type KeepaliveConfig struct {
	Time    time.Duration // interval between pings; default 30 s
	Timeout time.Duration // how long to wait for a ping's answer; default 10 s
}

// TLSConfig connects over TLS with PEM files (see Options.TLS).
type TLSConfig struct {
	// CAFile holds the CA certificate(s) that signed the server's certificate. Empty trusts
	// the system's CAs.
	CAFile string
	// CertFile and KeyFile are this client's certificate and (unencrypted) key, for a server
	// that requires client certificates (mTLS). Set both or neither.
	CertFile string
	KeyFile  string
	// ServerName is the name checked against the server's certificate; empty means the host
	// in the address given to Dial.
	ServerName string
}

// Credentials reads the files and returns gRPC transport credentials (TLS 1.2 or later).
func (c *TLSConfig) Credentials() (credentials.TransportCredentials, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("limner: TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("limner: TLS CA file %s holds no PEM certificate", c.CAFile)
		}
		config.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("limner: TLS client certificate and key go together: set both CertFile and KeyFile, or neither")
	}
	if c.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("limner: TLS client certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// Options configures Dial. The zero value (or nil) is a plaintext connection with the
// defaults above.
type Options struct {
	// APIKey is sent as "authorization: Bearer <key>" on every call when set.
	APIKey string
	// Keepalive pings; zero fields take the defaults.
	Keepalive KeepaliveConfig
	// UnaryTimeout is the deadline given to unary calls whose context has none. Streams
	// (GenerateImage, WatchJob, ReadAssetContent) get no default deadline: they can last as
	// long as a job does, and keepalive plus the server's heartbeats detect a dead peer.
	// Negative disables the default.
	UnaryTimeout time.Duration
	// MaxMessageBytes caps sent and received messages (uploads, asset chunks); default 32 MiB,
	// the server's default too.
	MaxMessageBytes int
	// TLS connects over TLS with a CA file and, for mTLS, a client certificate; nil (and no
	// TransportCredentials) means plaintext.
	TLS *TLSConfig
	// TransportCredentials, e.g. credentials.NewTLS(...), for anything TLS does not cover.
	// Set TLS or TransportCredentials, not both.
	TransportCredentials credentials.TransportCredentials
	// DialOptions are appended last (extra interceptors, a custom resolver, ...).
	DialOptions []grpc.DialOption
}

// Client is a connection to a Limner server plus the generated service stubs.
type Client struct {
	conn             *grpc.ClientConn
	Images           limnerv1.ImageServiceClient
	Jobs             limnerv1.JobServiceClient
	Models           limnerv1.ModelServiceClient
	Scenes           limnerv1.SceneServiceClient
	DesignReferences limnerv1.DesignReferenceServiceClient
}

// Dial connects to a Limner server at addr ("host:port"). Like grpc.NewClient it does not
// wait for the connection: the first call does, and fails with UNAVAILABLE if the server
// cannot be reached. opts may be nil.
func Dial(addr string, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Keepalive.Time == 0 {
		o.Keepalive.Time = DefaultKeepaliveTime
	}
	if o.Keepalive.Timeout == 0 {
		o.Keepalive.Timeout = DefaultKeepaliveTimeout
	}
	if o.UnaryTimeout == 0 {
		o.UnaryTimeout = DefaultUnaryTimeout
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	creds := o.TransportCredentials
	if o.TLS != nil {
		if creds != nil {
			return nil, errors.New("limner: set Options.TLS or Options.TransportCredentials, not both")
		}
		var err error
		if creds, err = o.TLS.Credentials(); err != nil {
			return nil, err
		}
	}
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	dialOptions := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                o.Keepalive.Time,
			Timeout:             o.Keepalive.Timeout,
			PermitWithoutStream: true,
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(o.MaxMessageBytes),
			grpc.MaxCallSendMsgSize(o.MaxMessageBytes),
		),
		grpc.WithChainUnaryInterceptor(unaryDefaults(o.UnaryTimeout, o.APIKey)),
		grpc.WithChainStreamInterceptor(streamDefaults(o.APIKey)),
	}
	dialOptions = append(dialOptions, o.DialOptions...)
	conn, err := grpc.NewClient(addr, dialOptions...)
	if err != nil {
		return nil, fmt.Errorf("limner: dial %s: %w", addr, err)
	}
	return NewClient(conn), nil
}

// NewClient wraps an existing connection (yours to configure and to close).
func NewClient(conn *grpc.ClientConn) *Client {
	return &Client{
		conn:             conn,
		Images:           limnerv1.NewImageServiceClient(conn),
		Jobs:             limnerv1.NewJobServiceClient(conn),
		Models:           limnerv1.NewModelServiceClient(conn),
		Scenes:           limnerv1.NewSceneServiceClient(conn),
		DesignReferences: limnerv1.NewDesignReferenceServiceClient(conn),
	}
}

// Conn is the underlying gRPC connection.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; in-flight calls fail with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

func withAPIKey(ctx context.Context, apiKey string) context.Context {
	if apiKey == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+apiKey)
}

func unaryDefaults(timeout time.Duration, apiKey string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, callOptions ...grpc.CallOption) error {
		if _, has := ctx.Deadline(); !has && timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return invoker(withAPIKey(ctx, apiKey), method, req, reply, cc, callOptions...)
	}
}

func streamDefaults(apiKey string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
		streamer grpc.Streamer, callOptions ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(withAPIKey(ctx, apiKey), desc, cc, method, callOptions...)
	}
}

// FindDetail returns the first detail of type T in a gRPC error's google.rpc.Status, e.g.
//
//	info, ok := limner.FindDetail[*errdetails.ErrorInfo](err)
//	if ok && info.GetReason() == "MODEL_CAPABILITY_UNSUPPORTED" { ... }
func FindDetail[T proto.Message](err error) (T, bool) {
	var zero T
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return zero, false
	}
	for _, detail := range st.Details() {
		if typed, ok := detail.(T); ok {
			return typed, true
		}
	}
	return zero, false
}

// NewRequestID returns a random UUID (version 4) for a request_id. Setting one on a creating
// request makes a retry of that request return the same job instead of starting a second one.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
