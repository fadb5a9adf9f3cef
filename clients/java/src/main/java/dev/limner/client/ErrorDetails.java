package dev.limner.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.PreconditionFailure;
import com.google.rpc.RetryInfo;
import com.google.rpc.Status;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Reads the {@code google.rpc} details of a Limner error: from a failed call's
 * StatusRuntimeException (the grpc-status-details-bin trailer) or from a job's {@code
 * google.rpc.Status} ({@code Job.error}, a {@code failed} event).
 *
 * <pre>{@code
 * try { ... } catch (StatusRuntimeException e) {
 *   ErrorDetails.errorInfo(e).ifPresent(info -> System.out.println(info.getReason()));
 * }
 * }</pre>
 */
public final class ErrorDetails {
  private ErrorDetails() {}

  /** The rich status of a gRPC error, or empty when it has none. */
  public static Optional<Status> status(Throwable error) {
    return Optional.ofNullable(error == null ? null : StatusProto.fromThrowable(error));
  }

  /** The first detail of that type in a gRPC error's status. */
  public static <T extends Message> Optional<T> find(Throwable error, Class<T> type) {
    return status(error).flatMap(status -> find(status, type));
  }

  /** The first detail of that type in a google.rpc.Status. */
  public static <T extends Message> Optional<T> find(Status status, Class<T> type) {
    for (Any detail : status.getDetailsList()) {
      if (detail.is(type)) {
        try {
          return Optional.of(detail.unpack(type));
        } catch (InvalidProtocolBufferException e) {
          // a malformed detail: look further
        }
      }
    }
    return Optional.empty();
  }

  /** Every detail of that type in a google.rpc.Status. */
  public static <T extends Message> List<T> findAll(Status status, Class<T> type) {
    List<T> found = new ArrayList<>();
    for (Any detail : status.getDetailsList()) {
      if (detail.is(type)) {
        try {
          found.add(detail.unpack(type));
        } catch (InvalidProtocolBufferException e) {
          // skip it
        }
      }
    }
    return found;
  }

  /** The stable reason, domain and metadata, e.g. MODEL_CAPABILITY_UNSUPPORTED. */
  public static Optional<ErrorInfo> errorInfo(Throwable error) {
    return find(error, ErrorInfo.class);
  }

  /** Which request fields were invalid and why. */
  public static Optional<BadRequest> badRequest(Throwable error) {
    return find(error, BadRequest.class);
  }

  /** What must be true first (a capability, a job state, an asset in use, ...). */
  public static Optional<PreconditionFailure> preconditionFailure(Throwable error) {
    return find(error, PreconditionFailure.class);
  }

  /** How long to wait before retrying. */
  public static Optional<RetryInfo> retryInfo(Throwable error) {
    return find(error, RetryInfo.class);
  }

  /** "CODE: message (REASON)" for a gRPC error with an ErrorInfo, else the error's message. */
  public static String describe(Throwable error) {
    io.grpc.Status status = io.grpc.Status.fromThrowable(error);
    Optional<ErrorInfo> info = errorInfo(error);
    if (status.getCode() != io.grpc.Status.Code.UNKNOWN && info.isPresent()) {
      return status.getCode() + ": " + status.getDescription() + " (" + info.get().getReason() + ")";
    }
    return String.valueOf(error.getMessage());
  }
}
