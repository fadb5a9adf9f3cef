package dev.limner.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.RetryInfo;
import dev.limner.v1.Asset;
import dev.limner.v1.ImageServiceGrpc;
import dev.limner.v1.ReadAssetContentRequest;
import dev.limner.v1.ReadAssetContentResponse;
import dev.limner.v1.UploadImageRequest;
import dev.limner.v1.UploadImageResponse;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The client's own behaviour against a small fake ImageService on a loopback port (no Limner
 * server needed): the API key and default deadline on the wire, the download's integrity
 * checks, and typed error details the live server does not produce on demand.
 */
@Timeout(30)
class LocalServerTest {
  private static final byte[] CONTENT = "not really a png".getBytes(StandardCharsets.UTF_8);
  private static final String NAME = "assets/" + sha256(CONTENT);

  private final Map<String, String> authorization = new ConcurrentHashMap<>();
  private final Map<String, Boolean> hadDeadline = new ConcurrentHashMap<>();
  private volatile List<ReadAssetContentResponse> chunks;
  private Server server;

  static String sha256(byte[] data) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  static ReadAssetContentResponse chunk(long offset, byte[] data, long announcedSize) {
    ReadAssetContentResponse.Builder b =
        ReadAssetContentResponse.newBuilder().setOffset(offset).setData(ByteString.copyFrom(data));
    if (announcedSize >= 0) {
      b.setAsset(Asset.newBuilder().setName(NAME).setSizeBytes(announcedSize));
    }
    return b.build();
  }

  final class FakeImages extends ImageServiceGrpc.ImageServiceImplBase {
    @Override
    public void readAssetContent(
        ReadAssetContentRequest request, StreamObserver<ReadAssetContentResponse> responses) {
      chunks.forEach(responses::onNext);
      responses.onCompleted();
    }

    @Override
    public void uploadImage(
        UploadImageRequest request, StreamObserver<UploadImageResponse> response) {
      if (request.getContent().isEmpty()) {
        com.google.rpc.Status status =
            com.google.rpc.Status.newBuilder()
                .setCode(Code.INVALID_ARGUMENT_VALUE)
                .setMessage("content is empty")
                .addDetails(
                    Any.pack(
                        BadRequest.newBuilder()
                            .addFieldViolations(
                                BadRequest.FieldViolation.newBuilder()
                                    .setField("content")
                                    .setDescription("must not be empty"))
                            .build()))
                .addDetails(
                    Any.pack(
                        RetryInfo.newBuilder()
                            .setRetryDelay(com.google.protobuf.Duration.newBuilder().setSeconds(3))
                            .build()))
                .build();
        response.onError(StatusProto.toStatusRuntimeException(status));
        return;
      }
      response.onNext(
          UploadImageResponse.newBuilder()
              .setAsset(Asset.newBuilder().setName("assets/" + sha256(request.getContent().toByteArray())))
              .setCreated(true)
              .build());
      response.onCompleted();
    }
  }

  @BeforeEach
  void start() throws Exception {
    ServerInterceptor record =
        new ServerInterceptor() {
          @Override
          public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
              ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
            String method = call.getMethodDescriptor().getBareMethodName();
            String auth = headers.get(LimnerClient.AUTHORIZATION);
            authorization.put(method, auth == null ? "" : auth);
            hadDeadline.put(method, Context.current().getDeadline() != null);
            return next.startCall(call, headers);
          }
        };
    server =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .addService(ServerInterceptors.intercept(new FakeImages(), record))
            .build()
            .start();
  }

  @AfterEach
  void stop() throws Exception {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  LimnerClient client(LimnerOptions options) {
    return LimnerClient.connect("127.0.0.1:" + server.getPort(), options);
  }

  @Test
  void apiKeyOnEveryCallAndADefaultDeadlineOnUnaryCallsOnly(@TempDir Path dir) throws Exception {
    chunks = List.of(chunk(0, CONTENT, CONTENT.length));
    LimnerOptions options =
        LimnerOptions.builder().apiKey("sekrit").unaryTimeout(Duration.ofSeconds(5)).build();
    try (LimnerClient client = client(options)) {
      Path file = dir.resolve("up.png");
      Files.write(file, CONTENT);
      assertEquals(NAME, client.uploadImage(file).getAsset().getName());
      client.downloadAsset(NAME, dir.resolve("down.png"));
    }
    assertEquals("Bearer sekrit", authorization.get("UploadImage"));
    assertEquals("Bearer sekrit", authorization.get("ReadAssetContent"));
    assertTrue(hadDeadline.get("UploadImage"), "unary call without the default deadline");
    assertFalse(hadDeadline.get("ReadAssetContent"), "a stream got a default deadline");

    try (LimnerClient client = client(LimnerOptions.builder().unaryTimeout(null).build())) {
      client.uploadImage(Files.write(dir.resolve("again.png"), CONTENT));
    }
    assertEquals("", authorization.get("UploadImage"), "no API key: no authorization header");
    assertFalse(hadDeadline.get("UploadImage"), "unaryTimeout(null) still set a deadline");
  }

  @Test
  void downloadInChunks(@TempDir Path dir) throws Exception {
    byte[] first = java.util.Arrays.copyOfRange(CONTENT, 0, 5);
    byte[] rest = java.util.Arrays.copyOfRange(CONTENT, 5, CONTENT.length);
    chunks = List.of(chunk(0, first, CONTENT.length), chunk(5, rest, -1));
    try (LimnerClient client = client(LimnerOptions.defaults())) {
      Path path = dir.resolve("a.png");
      Files.writeString(path, "an older file is replaced");
      assertEquals(CONTENT.length, client.downloadAsset(NAME, path));
      assertEquals(sha256(CONTENT), sha256(Files.readAllBytes(path)));
    }
  }

  void assertRejected(Path dir, String want) {
    try (LimnerClient client = client(LimnerOptions.defaults())) {
      Path path = dir.resolve("bad.png");
      AssetIntegrityException error =
          assertThrows(AssetIntegrityException.class, () -> client.downloadAsset(NAME, path));
      assertTrue(error.getMessage().contains(want), error.getMessage());
      assertFalse(Files.exists(path), "a rejected download left the file");
      assertFalse(Files.exists(dir.resolve("bad.png.part")), "a rejected download left .part");
    }
  }

  @Test
  void downloadRejectsOtherContent(@TempDir Path dir) {
    byte[] other = "something else!!".getBytes(StandardCharsets.UTF_8);
    chunks = List.of(chunk(0, other, other.length));
    assertRejected(dir, "content has sha256 " + sha256(other));
  }

  @Test
  void downloadRejectsAShortContent(@TempDir Path dir) {
    chunks = List.of(chunk(0, java.util.Arrays.copyOf(CONTENT, 4), CONTENT.length));
    assertRejected(dir, "got 4 bytes, the asset has " + CONTENT.length);
  }

  @Test
  void downloadRejectsAGap(@TempDir Path dir) {
    chunks = List.of(chunk(0, java.util.Arrays.copyOf(CONTENT, 4), CONTENT.length), chunk(6, CONTENT, -1));
    assertRejected(dir, "chunk at offset 6, expected 4");
  }

  @Test
  void badRequestAndRetryInfo(@TempDir Path dir) throws Exception {
    try (LimnerClient client = client(LimnerOptions.defaults())) {
      Path empty = Files.write(dir.resolve("empty.png"), new byte[0]);
      StatusRuntimeException error =
          assertThrows(StatusRuntimeException.class, () -> client.uploadImage(empty));
      assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT, error.getStatus().getCode());
      BadRequest badRequest = ErrorDetails.badRequest(error).orElseThrow();
      assertEquals("content", badRequest.getFieldViolations(0).getField());
      assertEquals(3, ErrorDetails.retryInfo(error).orElseThrow().getRetryDelay().getSeconds());
      assertTrue(ErrorDetails.errorInfo(error).isEmpty());
      assertNotNull(ErrorDetails.status(error).orElse(null));
      assertEquals(
          1, ErrorDetails.findAll(ErrorDetails.status(error).orElseThrow(), BadRequest.class).size());
    }
    assertNull(ErrorDetails.status(new IllegalStateException("not gRPC")).orElse(null));
  }
}
