package dev.limner.client;

import java.time.Duration;
import java.util.Objects;

/**
 * Tunes {@link LimnerClient#watchJob} and {@link LimnerClient#generate}: where to start and how
 * hard to retry a dropped stream. {@code WatchOptions.defaults()} starts at the beginning and
 * resumes up to 8 times in a row, after 200 ms, 400 ms, 800 ms, ...
 */
public final class WatchOptions {
  private final long afterSequence;
  private final int maxRetries;
  private final Duration backoff;

  private WatchOptions(long afterSequence, int maxRetries, Duration backoff) {
    this.afterSequence = afterSequence;
    this.maxRetries = maxRetries;
    this.backoff = backoff;
  }

  public static WatchOptions defaults() {
    return new WatchOptions(0, 8, Duration.ofMillis(200));
  }

  /** Start after this logged event (0: from the beginning). */
  public WatchOptions afterSequence(long afterSequence) {
    return new WatchOptions(afterSequence, maxRetries, backoff);
  }

  /** How many times in a row a dropped stream is resumed; any event received resets it. */
  public WatchOptions maxRetries(int maxRetries) {
    if (maxRetries < 0) {
      throw new IllegalArgumentException("maxRetries must not be negative");
    }
    return new WatchOptions(afterSequence, maxRetries, backoff);
  }

  /** The first pause before resuming; it doubles on each consecutive retry. */
  public WatchOptions backoff(Duration backoff) {
    return new WatchOptions(afterSequence, maxRetries, Objects.requireNonNull(backoff));
  }

  public long afterSequence() {
    return afterSequence;
  }

  public int maxRetries() {
    return maxRetries;
  }

  public Duration backoff() {
    return backoff;
  }
}
