package dev.limner.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.limner.v1.GenerateImageRequest;
import dev.limner.v1.ImageOptions;
import dev.limner.v1.JobEvent;
import dev.limner.v1.JobProgress;
import dev.limner.v1.JobStage;
import java.util.ArrayList;
import java.util.List;

/**
 * The servers the contract suite runs against: tests/contract starts a real Limner server with
 * a slow offline provider (10 steps of 0.2 s), so a job is still running when a test drops its
 * stream or cancels it, and passes its address in LIMNER_ADDR. Without it every test skips.
 */
final class Servers {
  private Servers() {}

  static String addr() {
    String addr = System.getenv("LIMNER_ADDR");
    assumeTrue(
        addr != null && !addr.isEmpty(),
        "LIMNER_ADDR is not set: start a server (limner serve --address 127.0.0.1:50051) and run"
            + " LIMNER_ADDR=127.0.0.1:50051 mvn -B verify; tests/contract does this in CI");
    return addr;
  }

  static LimnerClient connect(LimnerOptions options) {
    return LimnerClient.connect(addr(), options);
  }

  static GenerateImageRequest request(String prompt, long seed) {
    return GenerateImageRequest.newBuilder()
        .setPrompt(prompt)
        .setOptions(ImageOptions.newBuilder().setWidth(96).setHeight(64).setSeed(seed))
        .build();
  }

  static String kind(JobEvent event) {
    return event.getEventCase().name().toLowerCase();
  }

  static List<Long> sequences(List<JobEvent> events) {
    List<Long> out = new ArrayList<>();
    for (JobEvent event : events) {
      if (JobEvents.isLogged(event)) {
        out.add(event.getSequence());
      }
    }
    return out;
  }

  /** Logged sequences are exactly 1..n: nothing lost, nothing repeated. */
  static void assertOneToN(List<Long> sequences) {
    if (sequences.isEmpty()) {
      fail("no logged events");
    }
    for (int i = 0; i < sequences.size(); i++) {
      assertEquals(
          i + 1L,
          (long) sequences.get(i),
          "logged sequences are not 1..n (lost or repeated events): " + sequences);
    }
  }

  /** A GENERATING progress event with at least one step done and more to come. */
  static boolean midJob(JobEvent event) {
    JobProgress p = event.getProgress();
    return event.hasProgress()
        && p.getStage() == JobStage.JOB_STAGE_GENERATING
        && p.getStep() >= 1
        && p.getStep() < p.getTotalSteps();
  }

  static List<JobEvent> drain(JobWatch watch) {
    List<JobEvent> events = new ArrayList<>();
    try (watch) {
      for (JobEvent event : watch) {
        events.add(event);
      }
    }
    return events;
  }
}
