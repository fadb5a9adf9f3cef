package dev.limner.client;

import com.google.protobuf.ByteString;
import dev.limner.v1.DesignReferenceServiceGrpc;
import dev.limner.v1.GenerateImageRequest;
import dev.limner.v1.GenerateImageResponse;
import dev.limner.v1.ImageServiceGrpc;
import dev.limner.v1.JobEvent;
import dev.limner.v1.JobServiceGrpc;
import dev.limner.v1.ModelServiceGrpc;
import dev.limner.v1.ReadAssetContentRequest;
import dev.limner.v1.ReadAssetContentResponse;
import dev.limner.v1.SceneServiceGrpc;
import dev.limner.v1.UploadImageRequest;
import dev.limner.v1.UploadImageResponse;
import dev.limner.v1.WatchJobRequest;
import dev.limner.v1.WatchJobResponse;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Context;
import io.grpc.ForwardingClientCall;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A connection to a Limner server plus the generated blocking stubs: {@link #images()}, {@link
 * #jobs()}, {@link #models()}, {@link #scenes()} and {@link #designReferences()} are the plain
 * {@code dev.limner.v1} gRPC API (use {@link #channel()} for the async or future stubs). On top
 * of them: {@link #generate} and {@link #watchJob}, which follow a job and resume after a
 * dropped stream without losing or repeating an event; {@link #uploadImage} and {@link
 * #downloadAsset}, which checks the size and sha256 of what it saved.
 *
 * <pre>{@code
 * try (LimnerClient client = LimnerClient.connect("127.0.0.1:50051", LimnerOptions.defaults())) {
 *   client.models().listModels(ListModelsRequest.getDefaultInstance());
 * }
 * }</pre>
 */
public final class LimnerClient implements AutoCloseable {
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final ManagedChannel channel;
  private final boolean ownsChannel;
  private final ImageServiceGrpc.ImageServiceBlockingStub images;
  private final JobServiceGrpc.JobServiceBlockingStub jobs;
  private final ModelServiceGrpc.ModelServiceBlockingStub models;
  private final SceneServiceGrpc.SceneServiceBlockingStub scenes;
  private final DesignReferenceServiceGrpc.DesignReferenceServiceBlockingStub designReferences;

  private LimnerClient(ManagedChannel channel, boolean ownsChannel) {
    this.channel = channel;
    this.ownsChannel = ownsChannel;
    this.images = ImageServiceGrpc.newBlockingStub(channel);
    this.jobs = JobServiceGrpc.newBlockingStub(channel);
    this.models = ModelServiceGrpc.newBlockingStub(channel);
    this.scenes = SceneServiceGrpc.newBlockingStub(channel);
    this.designReferences = DesignReferenceServiceGrpc.newBlockingStub(channel);
  }

  /**
   * Connects to a Limner server at {@code target} ({@code host:port}, or any gRPC target such as
   * {@code dns:///limner.internal:443}). Like gRPC itself it does not wait for the connection:
   * the first call does, and fails with UNAVAILABLE if the server cannot be reached.
   *
   * @throws IllegalArgumentException for TLS files that cannot be used, or both TLS and
   *     channel credentials set
   */
  public static LimnerClient connect(String target, LimnerOptions options) {
    LimnerOptions o = options == null ? LimnerOptions.defaults() : options;
    ChannelCredentials credentials = o.channelCredentials();
    if (o.tls() != null) {
      if (credentials != null) {
        throw new IllegalArgumentException(
            "limner: set LimnerOptions tls or channelCredentials, not both");
      }
      credentials = o.tls().credentials();
    }
    if (credentials == null) {
      credentials = InsecureChannelCredentials.create();
    }
    List<ClientInterceptor> interceptors = new ArrayList<>(o.interceptors());
    // intercept() calls the last interceptor first: the defaults see every call first.
    interceptors.add(new Defaults(o.apiKey(), o.unaryTimeout(), o.maxMessageBytes()));
    ManagedChannelBuilder<?> builder =
        Grpc.newChannelBuilder(target, credentials)
            .keepAliveTime(o.keepaliveTime().toNanos(), TimeUnit.NANOSECONDS)
            .keepAliveTimeout(o.keepaliveTimeout().toNanos(), TimeUnit.NANOSECONDS)
            .keepAliveWithoutCalls(true)
            .maxInboundMessageSize(o.maxMessageBytes())
            .userAgent("limner-java/0.1.0")
            .intercept(interceptors);
    if (o.tls() != null && o.tls().serverName() != null) {
      builder.overrideAuthority(o.tls().serverName());
    }
    o.channelCustomizer().accept(builder);
    return new LimnerClient(builder.build(), true);
  }

  /** Wraps a channel of your own (yours to configure and to shut down). */
  public static LimnerClient wrap(ManagedChannel channel) {
    return new LimnerClient(channel, false);
  }

  /** A random UUID for a request_id: a retried request with it returns the same job. */
  public static String newRequestId() {
    return UUID.randomUUID().toString();
  }

  public ManagedChannel channel() {
    return channel;
  }

  public ImageServiceGrpc.ImageServiceBlockingStub images() {
    return images;
  }

  public JobServiceGrpc.JobServiceBlockingStub jobs() {
    return jobs;
  }

  public ModelServiceGrpc.ModelServiceBlockingStub models() {
    return models;
  }

  public SceneServiceGrpc.SceneServiceBlockingStub scenes() {
    return scenes;
  }

  public DesignReferenceServiceGrpc.DesignReferenceServiceBlockingStub designReferences() {
    return designReferences;
  }

  /** Follows {@code job} ({@code jobs/123}) from its first event, resuming after drops. */
  public JobWatch watchJob(String job) {
    return watchJob(job, WatchOptions.defaults());
  }

  /** Follows {@code job} after {@code options.afterSequence()}, resuming after drops. */
  public JobWatch watchJob(String job, WatchOptions options) {
    if (job == null || job.isEmpty()) {
      throw new IllegalArgumentException("limner: watchJob needs a job name, jobs/{job}");
    }
    return new JobWatch(this, job, options, null, null);
  }

  /** {@link #generate(GenerateImageRequest, WatchOptions)} with the default options. */
  public JobWatch generate(GenerateImageRequest request) {
    return generate(request, WatchOptions.defaults());
  }

  /**
   * Starts a GenerateImage job and follows it to its terminal event like {@code
   * images().generateImage}, but robust to a dropped stream: it resumes with WatchJob from the
   * last logged event. A request without a request_id gets a fresh one, so that re-sending it
   * after a drop before the job's first event returns the same job.
   */
  public JobWatch generate(GenerateImageRequest request, WatchOptions options) {
    GenerateImageRequest sent =
        request.getRequestId().isEmpty()
            ? request.toBuilder().setRequestId(newRequestId()).build()
            : request;
    return new JobWatch(
        this,
        null,
        options,
        () -> map(images.generateImage(sent), GenerateImageResponse::getEvent),
        sent.getRequestId());
  }

  Iterator<JobEvent> watchStream(String job, long afterSequence) {
    WatchJobRequest request =
        WatchJobRequest.newBuilder().setName(job).setAfterSequence(afterSequence).build();
    return map(jobs.watchJob(request), WatchJobResponse::getEvent);
  }

  /**
   * Uploads the image file at {@code path} (PNG, JPEG, WebP or GIF), named by its file name.
   * The server stores it content-addressed: the same bytes again return the same asset with
   * {@code created == false}.
   */
  public UploadImageResponse uploadImage(Path path) throws IOException {
    byte[] content = Files.readAllBytes(path);
    return images.uploadImage(
        UploadImageRequest.newBuilder()
            .setContent(ByteString.copyFrom(content))
            .setDisplayName(path.getFileName().toString())
            .build());
  }

  /**
   * Streams the asset {@code name} ({@code assets/<sha256>}) into the file at {@code path} and
   * returns the number of bytes written. It writes {@code path + ".part"} first and renames it
   * only after checking the chunk offsets, the size the server announced and, for a
   * content-addressed name, the sha256; a failed download leaves no file at {@code path}.
   *
   * @throws io.grpc.StatusRuntimeException for the RPC's errors, e.g. NOT_FOUND
   * @throws AssetIntegrityException when the bytes do not match
   * @throws IOException when the file cannot be written
   */
  public long downloadAsset(String name, Path path) throws IOException {
    Path partial = path.resolveSibling(path.getFileName() + ".part");
    Context.CancellableContext context = Context.current().withCancellation();
    boolean saved = false;
    try (OutputStream out = Files.newOutputStream(partial)) {
      Iterator<ReadAssetContentResponse> stream;
      Context previous = context.attach();
      try {
        stream = images.readAssetContent(ReadAssetContentRequest.newBuilder().setName(name).build());
      } finally {
        context.detach(previous);
      }
      MessageDigest digest = sha256();
      long written = 0;
      long expected = -1;
      while (stream.hasNext()) {
        ReadAssetContentResponse chunk = stream.next();
        if (chunk.hasAsset() && chunk.getAsset().getSizeBytes() > 0) {
          expected = chunk.getAsset().getSizeBytes();
        }
        if (chunk.getOffset() != written) {
          throw new AssetIntegrityException(
              "limner: download " + name + ": chunk at offset " + chunk.getOffset()
                  + ", expected " + written);
        }
        chunk.getData().writeTo(out);
        digest.update(chunk.getData().asReadOnlyByteBuffer());
        written += chunk.getData().size();
      }
      if (expected >= 0 && written != expected) {
        throw new AssetIntegrityException(
            "limner: download " + name + ": got " + written + " bytes, the asset has " + expected);
      }
      String want = name.startsWith("assets/") ? name.substring("assets/".length()) : "";
      if (want.length() == 64) {
        String got = HexFormat.of().formatHex(digest.digest());
        if (!got.equals(want)) {
          throw new AssetIntegrityException(
              "limner: download " + name + ": content has sha256 " + got);
        }
      }
      out.close();
      Files.move(
          partial, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      saved = true;
      return written;
    } finally {
      context.cancel(null);
      if (!saved) {
        Files.deleteIfExists(partial);
      }
    }
  }

  /** Shuts the channel down (if this client made it); in-flight calls fail with CANCELLED. */
  @Override
  public void close() {
    if (!ownsChannel) {
      return;
    }
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is always available", e);
    }
  }

  private static <T> Iterator<JobEvent> map(Iterator<T> responses, Function<T, JobEvent> event) {
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return responses.hasNext();
      }

      @Override
      public JobEvent next() {
        return event.apply(responses.next());
      }
    };
  }

  /** The API key on every call, a default deadline on unary calls, the outbound size cap. */
  private static final class Defaults implements ClientInterceptor {
    private final String authorization;
    private final Duration unaryTimeout;
    private final int maxMessageBytes;

    Defaults(String apiKey, Duration unaryTimeout, int maxMessageBytes) {
      this.authorization = apiKey == null ? null : "Bearer " + apiKey;
      this.unaryTimeout = unaryTimeout;
      this.maxMessageBytes = maxMessageBytes;
    }

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions callOptions, Channel next) {
      CallOptions options = callOptions;
      if (unaryTimeout != null
          && method.getType() == MethodDescriptor.MethodType.UNARY
          && options.getDeadline() == null
          && Context.current().getDeadline() == null) {
        options = options.withDeadlineAfter(unaryTimeout.toNanos(), TimeUnit.NANOSECONDS);
      }
      if (options.getMaxOutboundMessageSize() == null) {
        options = options.withMaxOutboundMessageSize(maxMessageBytes);
      }
      ClientCall<ReqT, RespT> call = next.newCall(method, options);
      if (authorization == null) {
        return call;
      }
      return new ForwardingClientCall.SimpleForwardingClientCall<>(call) {
        @Override
        public void start(Listener<RespT> responseListener, Metadata headers) {
          headers.put(AUTHORIZATION, authorization);
          super.start(responseListener, headers);
        }
      };
    }
  }
}
