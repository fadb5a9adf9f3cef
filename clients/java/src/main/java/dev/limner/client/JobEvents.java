package dev.limner.client;

import dev.limner.v1.JobEvent;

/** What kind of event a {@link JobEvent} is, for resuming and ending a watch. */
public final class JobEvents {
  private JobEvents() {}

  /** True when the event ends its job's stream: completed, failed or cancelled. */
  public static boolean isTerminal(JobEvent event) {
    switch (event.getEventCase()) {
      case COMPLETED:
      case FAILED:
      case CANCELLED:
        return true;
      default:
        return false;
    }
  }

  /**
   * True when the event is an entry of the job's log, numbered by its sequence (1, 2, 3, ...).
   * Transient events (snapshots, heartbeats, queue positions) describe the current state: they
   * are sent again on every (re)connection and carry the latest logged sequence, so they are
   * never deduplicated or resumed from.
   */
  public static boolean isLogged(JobEvent event) {
    switch (event.getEventCase()) {
      case SNAPSHOT:
      case HEARTBEAT:
      case EVENT_NOT_SET:
        return false;
      default:
        return !event.getTransient();
    }
  }
}
