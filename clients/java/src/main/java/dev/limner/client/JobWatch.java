package dev.limner.client;

import dev.limner.v1.JobEvent;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.function.Supplier;

/**
 * Follows one job to its terminal event, resuming after a dropped stream so that every logged
 * event is returned exactly once and in order. Made by {@link LimnerClient#watchJob} and
 * {@link LimnerClient#generate}; use it in a try-with-resources and iterate:
 *
 * <pre>{@code
 * try (JobWatch watch = client.watchJob("jobs/123")) {
 *   for (JobEvent event : watch) {
 *     System.out.println(event.getSequence() + " " + event.getEventCase());
 *   }
 * }
 * }</pre>
 *
 * <p>When the stream fails with UNAVAILABLE (a lost connection, a server restarting) or ends
 * without a terminal event, it reconnects with {@code WatchJob(after_sequence = the last logged
 * sequence seen)}; logged events at or below it are skipped. Each (re)connection starts with a
 * snapshot; transient events (heartbeats, queue positions) pass through. Any other error (or
 * too many retries in a row) is thrown as a StatusRuntimeException by {@link #hasNext()}.
 *
 * <p>Not thread-safe, except {@link #close()}, which may be called from another thread to stop
 * the watch (the job keeps running: only CancelJob stops it).
 */
public final class JobWatch implements Iterator<JobEvent>, Iterable<JobEvent>, AutoCloseable {
  private final LimnerClient client;
  private final WatchOptions options;
  private final Supplier<Iterator<JobEvent>> create;
  private final String requestId;
  private String job;
  private long lastSequence;
  private int retries;
  private Context.CancellableContext context;
  private Iterator<JobEvent> stream;
  private JobEvent pending;
  private boolean done;
  private volatile boolean closed;

  JobWatch(
      LimnerClient client,
      String job,
      WatchOptions options,
      Supplier<Iterator<JobEvent>> create,
      String requestId) {
    this.client = client;
    this.job = job;
    this.options = options;
    this.create = create;
    this.requestId = requestId;
    this.lastSequence = options.afterSequence();
  }

  /** The job, {@code jobs/{job}}; null until generate's first event names it. */
  public String job() {
    return job;
  }

  /** The request_id a generate sent (so a caller can retry it); null for a watch. */
  public String requestId() {
    return requestId;
  }

  /** The highest logged sequence returned so far: where a later watch would resume. */
  public long lastSequence() {
    return lastSequence;
  }

  @Override
  public Iterator<JobEvent> iterator() {
    return this;
  }

  @Override
  public boolean hasNext() {
    if (pending != null) {
      return true;
    }
    if (done) {
      return false;
    }
    while (true) {
      if (closed) {
        done = true;
        throw Status.CANCELLED.withDescription("limner: watch closed").asRuntimeException();
      }
      try {
        if (stream == null) {
          open();
        }
        if (!stream.hasNext()) {
          throw Status.UNAVAILABLE
              .withDescription("limner: job stream ended before a terminal event")
              .asRuntimeException();
        }
        JobEvent event = stream.next();
        if (job == null || job.isEmpty()) {
          job = event.getJob();
        }
        if (JobEvents.isLogged(event)) {
          if (event.getSequence() <= lastSequence) {
            continue; // returned before the drop
          }
          lastSequence = event.getSequence();
        }
        retries = 0;
        if (JobEvents.isTerminal(event)) {
          done = true;
          closeStream();
        }
        pending = event;
        return true;
      } catch (StatusRuntimeException e) {
        closeStream();
        if (e.getStatus().getCode() != Status.Code.UNAVAILABLE
            || retries >= options.maxRetries()
            || closed) {
          done = true;
          throw e;
        }
        pause(options.backoff().toMillis() << Math.min(retries, 20));
        retries++;
      }
    }
  }

  @Override
  public JobEvent next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the job's stream has ended");
    }
    JobEvent event = pending;
    pending = null;
    return event;
  }

  /** Ends the stream's RPC (not the job). */
  @Override
  public void close() {
    closed = true;
    closeStream();
  }

  private void open() {
    Context.CancellableContext opened = Context.current().withCancellation();
    context = opened;
    Context previous = opened.attach();
    try {
      stream =
          (job == null || job.isEmpty()) && create != null
              ? create.get()
              : client.watchStream(job, lastSequence);
    } finally {
      opened.detach(previous);
    }
  }

  private void closeStream() {
    Context.CancellableContext current = context;
    if (current != null) {
      current.cancel(null);
    }
    stream = null;
  }

  private void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      done = true;
      throw Status.CANCELLED
          .withDescription("limner: interrupted while resuming a watch")
          .withCause(e)
          .asRuntimeException();
    }
  }
}
