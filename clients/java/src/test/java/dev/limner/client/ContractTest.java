package dev.limner.client;

import static dev.limner.client.Servers.assertOneToN;
import static dev.limner.client.Servers.drain;
import static dev.limner.client.Servers.kind;
import static dev.limner.client.Servers.midJob;
import static dev.limner.client.Servers.request;
import static dev.limner.client.Servers.sequences;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.rpc.ErrorInfo;
import com.google.rpc.PreconditionFailure;
import dev.limner.v1.CancelJobRequest;
import dev.limner.v1.CancelJobResponse;
import dev.limner.v1.GenerateImageRequest;
import dev.limner.v1.GenerateImageResponse;
import dev.limner.v1.ImageOutput;
import dev.limner.v1.JobEvent;
import dev.limner.v1.JobServiceGrpc;
import dev.limner.v1.JobState;
import dev.limner.v1.ListModelsRequest;
import dev.limner.v1.Model;
import dev.limner.v1.UploadImageResponse;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Context;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Against a real Limner server at LIMNER_ADDR (see {@link Servers}). */
@Timeout(60)
class ContractTest {

  @Test
  void listModels() {
    try (LimnerClient client = Servers.connect(LimnerOptions.defaults())) {
      Set<String> names =
          client.models().listModels(ListModelsRequest.getDefaultInstance()).getModelsList()
              .stream()
              .map(Model::getName)
              .collect(Collectors.toSet());
      assertTrue(
          names.contains("models/offline-image") && names.contains("models/offline-writer"),
          "built-in offline models missing from " + names);
    }
  }

  @Test
  void generateFollowsTheStreamToCompletion() {
    try (LimnerClient client = Servers.connect(LimnerOptions.defaults())) {
      JobWatch watch = client.generate(request("a lighthouse at dusk", 7));
      List<JobEvent> events = drain(watch);
      assertFalse(watch.requestId().isEmpty(), "generate sets a request_id");
      assertEquals("snapshot", kind(events.get(0)));
      assertEquals("completed", kind(events.get(events.size() - 1)));
      assertOneToN(sequences(events));
      List<Integer> steps = new ArrayList<>();
      int total = 0;
      for (JobEvent event : events) {
        if (event.hasProgress() && event.getProgress().getTotalSteps() > 0) {
          steps.add(event.getProgress().getStep());
          total = event.getProgress().getTotalSteps();
        }
      }
      assertTrue(steps.size() >= 2, "want step progress, got " + steps);
      assertEquals(total, (int) steps.get(steps.size() - 1), "steps end at the total: " + steps);
      for (int i = 1; i < steps.size(); i++) {
        assertTrue(steps.get(i) >= steps.get(i - 1), "steps go backwards: " + steps);
      }
      ImageOutput image = events.get(events.size() - 1).getCompleted().getImages(0);
      assertEquals(96, image.getWidth());
      assertEquals(64, image.getHeight());
      assertEquals("image/png", image.getMimeType());
      assertEquals(7, image.getSeed());
    }
  }

  @Test
  void droppedStreamResumesWithAfterSequence() {
    try (LimnerClient client = Servers.connect(LimnerOptions.defaults())) {
      // Follow GenerateImage until the job is mid-render, then drop the stream.
      Context.CancellableContext streamContext = Context.current().withCancellation();
      Iterator<GenerateImageResponse> stream;
      Context previous = streamContext.attach();
      try {
        stream = client.images().generateImage(request("a dropped stream", 3));
      } finally {
        streamContext.detach(previous);
      }
      List<JobEvent> before = new ArrayList<>();
      while (true) {
        assertTrue(stream.hasNext(), "stream ended before the job was mid-render");
        JobEvent event = stream.next().getEvent();
        before.add(event);
        if (midJob(event)) {
          break;
        }
      }
      streamContext.cancel(null);
      // The blocking iterator still hands out what had arrived before the cancel, then fails.
      StatusRuntimeException dropped =
          assertThrows(
              StatusRuntimeException.class,
              () -> {
                while (stream.hasNext()) {
                  before.add(stream.next().getEvent());
                }
              });
      assertEquals(Status.Code.CANCELLED, dropped.getStatus().getCode());
      String job = before.get(0).getJob();
      List<Long> seen = sequences(before);
      long last = seen.get(seen.size() - 1);

      // The job kept running; watchJob(after_sequence) returns exactly the rest.
      List<JobEvent> after = drain(client.watchJob(job, WatchOptions.defaults().afterSequence(last)));
      assertEquals("snapshot", kind(after.get(0)));
      assertEquals("completed", kind(after.get(after.size() - 1)));
      assertTrue(
          sequences(after).size() >= 2,
          "the job finished before the drop (only " + sequences(after) + " after it)");
      List<Long> all = new ArrayList<>(seen);
      all.addAll(sequences(after));
      assertOneToN(all);
    }
  }

  /**
   * Fails the first WatchJob stream with UNAVAILABLE after n messages, like a connection lost
   * mid-job; later streams are untouched.
   */
  static final class DropAfter implements ClientInterceptor {
    final int n;
    final AtomicBoolean dropped = new AtomicBoolean();
    final AtomicInteger watches = new AtomicInteger();

    DropAfter(int n) {
      this.n = n;
    }

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      ClientCall<ReqT, RespT> call = next.newCall(method, options);
      if (!method.getFullMethodName().equals(JobServiceGrpc.getWatchJobMethod().getFullMethodName())) {
        return call;
      }
      watches.incrementAndGet();
      if (!dropped.compareAndSet(false, true)) {
        return call;
      }
      return new ForwardingClientCall.SimpleForwardingClientCall<>(call) {
        @Override
        public void start(Listener<RespT> listener, Metadata headers) {
          super.start(
              new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
                private int left = n;
                private boolean closed;

                @Override
                public void onMessage(RespT message) {
                  if (closed) {
                    return;
                  }
                  if (left == 0) {
                    closed = true;
                    delegate()
                        .onClose(
                            Status.UNAVAILABLE.withDescription("test: connection lost"),
                            new Metadata());
                    call.cancel("test: connection lost", null);
                    return;
                  }
                  left--;
                  super.onMessage(message);
                }

                @Override
                public void onClose(Status status, Metadata trailers) {
                  if (!closed) {
                    closed = true;
                    super.onClose(status, trailers);
                  }
                }
              },
              headers);
        }
      };
    }
  }

  @Test
  void watchJobResumesAfterUnavailable() {
    DropAfter drops = new DropAfter(4);
    LimnerOptions options = LimnerOptions.builder().addInterceptor(drops).build();
    try (LimnerClient client = Servers.connect(options)) {
      // Create the job and leave its stream at once.
      Context.CancellableContext streamContext = Context.current().withCancellation();
      String job;
      Context previous = streamContext.attach();
      try {
        job = client.images().generateImage(request("a flaky network", 5)).next().getEvent().getJob();
      } finally {
        streamContext.detach(previous);
        streamContext.cancel(null);
      }

      List<JobEvent> events =
          drain(client.watchJob(job, WatchOptions.defaults().backoff(Duration.ofMillis(10))));
      assertTrue(
          drops.watches.get() >= 2,
          "watchJob never resumed (" + drops.watches.get() + " streams): the job ended too soon");
      assertEquals("completed", kind(events.get(events.size() - 1)));
      assertOneToN(sequences(events));
    }
  }

  @Test
  void richErrorDetails() {
    try (LimnerClient client = Servers.connect(LimnerOptions.defaults())) {
      GenerateImageRequest request =
          request("a cat", 1).toBuilder().setModel("models/offline-writer").build(); // no image output
      StatusRuntimeException error =
          assertThrows(StatusRuntimeException.class, () -> drain(client.generate(request)));
      assertEquals(Status.Code.FAILED_PRECONDITION, error.getStatus().getCode());

      ErrorInfo info =
          ErrorDetails.errorInfo(error)
              .orElseThrow(() -> new AssertionError("no ErrorInfo in " + ErrorDetails.status(error)));
      assertEquals("MODEL_CAPABILITY_UNSUPPORTED", info.getReason());
      assertEquals("limner.dev", info.getDomain());
      assertEquals("image output", info.getMetadataMap().get("capability"));

      PreconditionFailure failure =
          ErrorDetails.preconditionFailure(error)
              .orElseThrow(() -> new AssertionError("no PreconditionFailure"));
      assertEquals(1, failure.getViolationsCount(), failure.toString());
      PreconditionFailure.Violation violation = failure.getViolations(0);
      assertEquals("CAPABILITY", violation.getType());
      assertEquals("models/offline-writer", violation.getSubject());
      assertTrue(violation.getDescription().contains("image output"), violation.toString());
      assertTrue(ErrorDetails.describe(error).endsWith("(MODEL_CAPABILITY_UNSUPPORTED)"));
      assertTrue(ErrorDetails.badRequest(error).isEmpty());
      assertTrue(ErrorDetails.retryInfo(error).isEmpty());
    }
  }

  @Test
  void cancelJobEndsTheStreamWithCancelled() {
    try (LimnerClient client = Servers.connect(LimnerOptions.defaults())) {
      List<JobEvent> events = new ArrayList<>();
      boolean cancelled = false;
      try (JobWatch watch = client.generate(request("a cancelled job", 9))) {
        for (JobEvent event : watch) {
          events.add(event);
          if (!cancelled && midJob(event)) {
            CancelJobResponse response =
                client.jobs().cancelJob(CancelJobRequest.newBuilder().setName(event.getJob()).build());
            assertEquals(JobState.JOB_STATE_CANCELLED, response.getJob().getState());
            cancelled = true;
          }
        }
      }
      assertTrue(cancelled, "the job finished before it could be cancelled");
      JobEvent last = events.get(events.size() - 1);
      assertEquals("cancelled", kind(last));
      assertFalse(last.getCancelled().getReason().isEmpty(), "cancelled without a reason");
      assertOneToN(sequences(events));

      StatusRuntimeException again =
          assertThrows(
              StatusRuntimeException.class,
              () -> client.jobs().cancelJob(CancelJobRequest.newBuilder().setName(last.getJob()).build()));
      assertEquals(Status.Code.FAILED_PRECONDITION, again.getStatus().getCode());
      assertEquals(
          "JOB_NOT_CANCELLABLE",
          ErrorDetails.errorInfo(again).map(ErrorInfo::getReason).orElse("no ErrorInfo"));
    }
  }

  @Test
  void downloadAndUploadAsset(@TempDir Path dir) throws Exception {
    try (LimnerClient client = Servers.connect(LimnerOptions.defaults())) {
      List<JobEvent> events = drain(client.generate(request("a downloaded fox", 11)));
      JobEvent last = events.get(events.size() - 1);
      assertTrue(last.hasCompleted(), "last event " + kind(last));
      ImageOutput image = last.getCompleted().getImages(0);

      Path path = dir.resolve("fox.png");
      long written = client.downloadAsset(image.getAsset(), path);
      byte[] data = Files.readAllBytes(path);
      assertEquals(image.getSizeBytes(), written);
      assertEquals(image.getSizeBytes(), data.length);
      String sha256 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
      assertEquals("assets/" + sha256, image.getAsset(), "the asset names the sha256 of its bytes");
      assertFalse(Files.exists(dir.resolve("fox.png.part")), "partial file left behind");

      // Uploading the same bytes is deduplicated to the same content-addressed asset.
      UploadImageResponse uploaded = client.uploadImage(path);
      assertEquals(image.getAsset(), uploaded.getAsset().getName());
      assertFalse(uploaded.getCreated(), "upload of the same bytes: " + uploaded);

      Path missing = dir.resolve("missing.png");
      StatusRuntimeException notFound =
          assertThrows(
              StatusRuntimeException.class,
              () -> client.downloadAsset("assets/" + "0".repeat(64), missing));
      assertEquals(Status.Code.NOT_FOUND, notFound.getStatus().getCode());
      if (Files.exists(missing) || Files.exists(dir.resolve("missing.png.part"))) {
        fail("a failed download left a file behind");
      }
    }
  }
}
