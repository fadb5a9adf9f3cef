package dev.limner.client;

import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.ManagedChannelBuilder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * How {@link LimnerClient#connect(String, LimnerOptions)} sets up its channel. {@code
 * LimnerOptions.defaults()} is a plaintext connection with keepalive pings every 30 s (10 s
 * timeout), a 30 s default deadline for unary calls and 32 MiB messages.
 *
 * <pre>{@code
 * LimnerOptions options = LimnerOptions.builder()
 *     .apiKey(System.getenv("LIMNER_API_KEY"))
 *     .tls(TlsConfig.builder().caFile(Path.of("ca.pem")).build())
 *     .build();
 * }</pre>
 */
public final class LimnerOptions {
  /** Deadline given to unary calls that have none. */
  public static final Duration DEFAULT_UNARY_TIMEOUT = Duration.ofSeconds(30);
  /** Interval between keepalive pings; not below the server's 10 s minimum. */
  public static final Duration DEFAULT_KEEPALIVE_TIME = Duration.ofSeconds(30);
  /** How long a keepalive ping may wait for its answer. */
  public static final Duration DEFAULT_KEEPALIVE_TIMEOUT = Duration.ofSeconds(10);
  /** Cap on sent and received messages (uploads, asset chunks): the server's default too. */
  public static final int DEFAULT_MAX_MESSAGE_BYTES = 32 << 20;

  private final String apiKey;
  private final Duration keepaliveTime;
  private final Duration keepaliveTimeout;
  private final Duration unaryTimeout;
  private final int maxMessageBytes;
  private final TlsConfig tls;
  private final ChannelCredentials channelCredentials;
  private final List<ClientInterceptor> interceptors;
  private final Consumer<ManagedChannelBuilder<?>> channelCustomizer;

  private LimnerOptions(Builder b) {
    this.apiKey = b.apiKey;
    this.keepaliveTime = b.keepaliveTime;
    this.keepaliveTimeout = b.keepaliveTimeout;
    this.unaryTimeout = b.unaryTimeout;
    this.maxMessageBytes = b.maxMessageBytes;
    this.tls = b.tls;
    this.channelCredentials = b.channelCredentials;
    this.interceptors = List.copyOf(b.interceptors);
    this.channelCustomizer = b.channelCustomizer;
  }

  /** Plaintext, no API key, the defaults above. */
  public static LimnerOptions defaults() {
    return builder().build();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The API key sent as {@code authorization: Bearer <key>} on every call; null for none. */
  public String apiKey() {
    return apiKey;
  }

  public Duration keepaliveTime() {
    return keepaliveTime;
  }

  public Duration keepaliveTimeout() {
    return keepaliveTimeout;
  }

  /** The default deadline of unary calls; null when disabled. */
  public Duration unaryTimeout() {
    return unaryTimeout;
  }

  public int maxMessageBytes() {
    return maxMessageBytes;
  }

  /** TLS settings; null (and no channel credentials) means plaintext. */
  public TlsConfig tls() {
    return tls;
  }

  public ChannelCredentials channelCredentials() {
    return channelCredentials;
  }

  public List<ClientInterceptor> interceptors() {
    return interceptors;
  }

  Consumer<ManagedChannelBuilder<?>> channelCustomizer() {
    return channelCustomizer;
  }

  /** Builds {@link LimnerOptions}. */
  public static final class Builder {
    private String apiKey;
    private Duration keepaliveTime = DEFAULT_KEEPALIVE_TIME;
    private Duration keepaliveTimeout = DEFAULT_KEEPALIVE_TIMEOUT;
    private Duration unaryTimeout = DEFAULT_UNARY_TIMEOUT;
    private int maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES;
    private TlsConfig tls;
    private ChannelCredentials channelCredentials;
    private final List<ClientInterceptor> interceptors = new ArrayList<>();
    private Consumer<ManagedChannelBuilder<?>> channelCustomizer = builder -> {};

    private Builder() {}

    /** Sent as {@code authorization: Bearer <key>} on every call; null or empty sends none. */
    public Builder apiKey(String apiKey) {
      this.apiKey = apiKey == null || apiKey.isEmpty() ? null : apiKey;
      return this;
    }

    /**
     * Keepalive pings, which detect a dead connection under a long, quiet watch stream. The
     * interval must not be below the server's minimum (10 s by default), or it answers GOAWAY.
     */
    public Builder keepalive(Duration time, Duration timeout) {
      this.keepaliveTime = Objects.requireNonNull(time, "time");
      this.keepaliveTimeout = Objects.requireNonNull(timeout, "timeout");
      return this;
    }

    /**
     * The deadline given to unary calls that have none (neither in their CallOptions nor in
     * the current io.grpc.Context). Streams (GenerateImage, WatchJob, ReadAssetContent) get no
     * default deadline: they last as long as a job does, and keepalive plus the server's
     * heartbeats detect a dead peer. Null, zero or negative disables it.
     */
    public Builder unaryTimeout(Duration unaryTimeout) {
      this.unaryTimeout =
          unaryTimeout == null || unaryTimeout.isZero() || unaryTimeout.isNegative()
              ? null
              : unaryTimeout;
      return this;
    }

    /** Caps sent and received messages; default 32 MiB. */
    public Builder maxMessageBytes(int maxMessageBytes) {
      if (maxMessageBytes <= 0) {
        throw new IllegalArgumentException("maxMessageBytes must be positive");
      }
      this.maxMessageBytes = maxMessageBytes;
      return this;
    }

    /** Connects over TLS with a CA file and, for mTLS, a client certificate. */
    public Builder tls(TlsConfig tls) {
      this.tls = tls;
      return this;
    }

    /** Any other io.grpc.ChannelCredentials. Set this or {@link #tls}, not both. */
    public Builder channelCredentials(ChannelCredentials channelCredentials) {
      this.channelCredentials = channelCredentials;
      return this;
    }

    /** Extra interceptors, added after (so called before) the client's own. */
    public Builder addInterceptor(ClientInterceptor interceptor) {
      this.interceptors.add(Objects.requireNonNull(interceptor, "interceptor"));
      return this;
    }

    /** Last word on the channel builder (executor, load balancing, ...). */
    public Builder channelCustomizer(Consumer<ManagedChannelBuilder<?>> channelCustomizer) {
      this.channelCustomizer = Objects.requireNonNull(channelCustomizer, "channelCustomizer");
      return this;
    }

    public LimnerOptions build() {
      return new LimnerOptions(this);
    }
  }
}
