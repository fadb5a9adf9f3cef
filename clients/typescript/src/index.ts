/**
 * @limner/client: the hand-written layer over the generated limner.v1 schemas (./gen).
 *
 * - createLimnerClient(baseUrl): Connect clients for every service over gRPC (HTTP/2, plaintext
 *   or TLS with a CA file and an optional client certificate), with keepalive pings and a
 *   default deadline for unary calls.
 * - watchJob / generateImage: follow a job to its end, resuming after a dropped stream from the
 *   last logged event, so no event is lost or repeated.
 * - uploadImage / downloadAsset: files in, assets out (checked against their sha256 name).
 * - findDetail: read a rich error's google.rpc details (ErrorInfo, PreconditionFailure, ...).
 */
import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { open, readFile, rename, rm } from "node:fs/promises";
import type { SecureClientSessionOptions } from "node:http2";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  type CallOptions,
  type Client,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { DesignReferenceService } from "./gen/limner/v1/design_reference_service_pb.js";
import {
  ImageService,
  type GenerateImageRequestSchema,
  type UploadImageResponse,
} from "./gen/limner/v1/image_service_pb.js";
import type { JobEvent } from "./gen/limner/v1/job_pb.js";
import { JobService } from "./gen/limner/v1/job_service_pb.js";
import { ModelService } from "./gen/limner/v1/model_service_pb.js";
import { SceneService } from "./gen/limner/v1/scene_service_pb.js";

export { Code, ConnectError } from "@connectrpc/connect";
export * from "./gen/limner/v1/asset_pb.js";
export * from "./gen/limner/v1/design_reference_pb.js";
export * from "./gen/limner/v1/design_reference_service_pb.js";
export * from "./gen/limner/v1/image_service_pb.js";
export * from "./gen/limner/v1/job_pb.js";
export * from "./gen/limner/v1/job_service_pb.js";
export * from "./gen/limner/v1/model_pb.js";
export * from "./gen/limner/v1/model_service_pb.js";
export * from "./gen/limner/v1/scene_pb.js";
export * from "./gen/limner/v1/scene_service_pb.js";
export {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  RetryInfoSchema,
  type BadRequest,
  type ErrorInfo,
  type PreconditionFailure,
  type RetryInfo,
} from "./gen/google/rpc/error_details_pb.js";

/** TLS for an `https://` base URL. The files (PEM) are read when the client is created. */
export interface LimnerTlsOptions {
  /** The CA certificate(s) that signed the server's certificate. Default: Node's trusted CAs. */
  caFile?: string;
  /**
   * This client's certificate and (unencrypted) key, for a server that requires client
   * certificates (mTLS). Set both or neither.
   */
  certFile?: string;
  keyFile?: string;
  /** The name checked against the server's certificate. Default: the base URL's host. */
  serverName?: string;
}

export interface LimnerClientOptions {
  /** Sent as `authorization: Bearer <key>` on every call. */
  apiKey?: string;
  /** TLS options; the base URL must be `https://`. An `https://` URL without them trusts Node's CAs. */
  tls?: LimnerTlsOptions;
  /**
   * Keepalive PING interval. Must not be below the server's
   * `grpc.min_ping_interval_without_data_ms` (10 s by default) or it answers GOAWAY.
   * Default 30 000.
   */
  keepaliveIntervalMs?: number;
  /** How long a PING may go unanswered before the connection is dropped. Default 10 000. */
  keepaliveTimeoutMs?: number;
  /**
   * Deadline for unary calls that set no `timeoutMs` of their own. Default 30 000; 0 disables.
   * Streams (generateImage, watchJob, readAssetContent) get none: they last as long as a job,
   * and keepalive plus the server's heartbeats detect a dead peer.
   */
  unaryTimeoutMs?: number;
  /** Largest message sent or received (uploads, asset chunks). Default 32 MiB. */
  maxMessageBytes?: number;
  /** Extra Connect interceptors, run after the API-key one. */
  interceptors?: Interceptor[];
}

export interface LimnerClient {
  images: Client<typeof ImageService>;
  jobs: Client<typeof JobService>;
  models: Client<typeof ModelService>;
  scenes: Client<typeof SceneService>;
  designReferences: Client<typeof DesignReferenceService>;
  transport: Transport;
  /** Closes the HTTP/2 connection; calls in flight fail. */
  close(): void;
}

/**
 * Connects to a Limner server, e.g. `createLimnerClient("http://127.0.0.1:50051")` (plaintext
 * HTTP/2) or `createLimnerClient("https://limner.internal:50051", { tls: { caFile: "ca.pem" } })`.
 * The connection opens on the first call; a failed TLS handshake fails it with
 * `Code.Unavailable`. Throws at once when a TLS file cannot be read.
 */
export function createLimnerClient(baseUrl: string, options: LimnerClientOptions = {}): LimnerClient {
  const maxMessageBytes = options.maxMessageBytes ?? 32 * 1024 * 1024;
  const sessionManager = new Http2SessionManager(
    baseUrl,
    {
      pingIntervalMs: options.keepaliveIntervalMs ?? 30_000,
      pingTimeoutMs: options.keepaliveTimeoutMs ?? 10_000,
      pingIdleConnection: true,
    },
    options.tls ? tlsSessionOptions(baseUrl, options.tls) : undefined,
  );
  const interceptors: Interceptor[] = [];
  if (options.apiKey) {
    const value = `Bearer ${options.apiKey}`;
    interceptors.push((next) => (req) => {
      req.header.set("authorization", value);
      return next(req);
    });
  }
  interceptors.push(...(options.interceptors ?? []));
  const grpc = createGrpcTransport({
    baseUrl,
    sessionManager,
    interceptors,
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
  });
  const transport = withUnaryDeadline(grpc, options.unaryTimeoutMs ?? 30_000);
  return {
    images: createClient(ImageService, transport),
    jobs: createClient(JobService, transport),
    models: createClient(ModelService, transport),
    scenes: createClient(SceneService, transport),
    designReferences: createClient(DesignReferenceService, transport),
    transport,
    close: () => sessionManager.abort(),
  };
}

/** Node's HTTP/2 TLS options from the PEM files; throws one clear Error per problem. */
function tlsSessionOptions(baseUrl: string, tls: LimnerTlsOptions): SecureClientSessionOptions {
  if (new URL(baseUrl).protocol !== "https:") {
    throw new Error(`limner: TLS options need an https:// base URL, got ${baseUrl}`);
  }
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
    throw new Error("limner: TLS client certificate and key go together: set both certFile and keyFile, or neither");
  }
  const read = (path: string, what: string, marker: string): Buffer => {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (error) {
      throw new Error(`limner: cannot read the TLS ${what} ${path}: ${(error as Error).message}`);
    }
    if (!data.includes(marker)) throw new Error(`limner: the TLS ${what} ${path} is not PEM`);
    return data;
  };
  const options: SecureClientSessionOptions = {};
  if (tls.caFile) options.ca = read(tls.caFile, "CA file", "CERTIFICATE-----");
  if (tls.certFile && tls.keyFile) {
    options.cert = read(tls.certFile, "client certificate", "CERTIFICATE-----");
    options.key = read(tls.keyFile, "client key", "PRIVATE KEY-----");
  }
  if (tls.serverName) options.servername = tls.serverName;
  return options;
}

/** Unary calls without a timeout of their own get `timeoutMs`; streams are left alone. */
function withUnaryDeadline(transport: Transport, timeoutMs: number): Transport {
  if (timeoutMs <= 0) return transport;
  return {
    unary: (method, signal, callTimeoutMs, header, input, contextValues) =>
      transport.unary(method, signal, callTimeoutMs ?? timeoutMs, header, input, contextValues),
    stream: (method, signal, callTimeoutMs, header, input, contextValues) =>
      transport.stream(method, signal, callTimeoutMs, header, input, contextValues),
  };
}

/** `completed`, `failed` and `cancelled` end a job's stream. */
export function isTerminal(event: JobEvent): boolean {
  const kind = event.event.case;
  return kind === "completed" || kind === "failed" || kind === "cancelled";
}

/**
 * Logged events are numbered 1, 2, 3, ... per job. Transient events (snapshots, heartbeats,
 * queue positions) are not logged: they describe the current state, are sent again on every
 * (re)connection and carry the latest logged sequence, so they are never deduplicated or
 * resumed from.
 */
export function isLogged(event: JobEvent): boolean {
  const kind = event.event.case;
  return !event.transient && kind !== "snapshot" && kind !== "heartbeat" && kind !== undefined;
}

export interface WatchOptions {
  /** Start after this logged event (0n: from the beginning). */
  afterSequence?: bigint;
  /** Consecutive resumptions before the error is thrown; default 8. Any event resets it. */
  maxRetries?: number;
  /** First pause before resuming, doubling per consecutive retry; default 200 ms. */
  backoffMs?: number;
  /** Stops the watch (the job keeps running: only CancelJob stops it). */
  signal?: AbortSignal;
}

/** Raised inside the follower when a stream ended cleanly but before a terminal event. */
const endedEarly = () =>
  new ConnectError("job stream ended before a terminal event", Code.Unavailable);

type Opener = (signal: AbortSignal) => AsyncIterable<{ event?: JobEvent }>;

async function* follow(
  client: LimnerClient,
  job: string,
  create: Opener | undefined,
  options: WatchOptions,
): AsyncGenerator<JobEvent> {
  let last = options.afterSequence ?? 0n;
  const maxRetries = options.maxRetries ?? 8;
  const backoffMs = options.backoffMs ?? 200;
  let retries = 0;
  for (;;) {
    const attempt = new AbortController();
    const onAbort = () => attempt.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const open: Opener =
        job === "" && create
          ? create
          : (signal) =>
              client.jobs.watchJob({ name: job, afterSequence: last }, { signal });
      for await (const response of open(attempt.signal)) {
        const event = response.event;
        if (!event) continue;
        if (job === "") job = event.job;
        if (isLogged(event)) {
          if (event.sequence <= last) continue; // already yielded before the drop
          last = event.sequence;
        }
        retries = 0;
        yield event;
        if (isTerminal(event)) return;
      }
      throw endedEarly();
    } catch (error) {
      const connectError = ConnectError.from(error);
      if (
        connectError.code !== Code.Unavailable ||
        retries >= maxRetries ||
        options.signal?.aborted
      ) {
        throw connectError;
      }
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      attempt.abort(); // ends this attempt's RPC, also when the caller stops iterating
    }
    await sleep(backoffMs * 2 ** retries, undefined, { signal: options.signal });
    retries += 1;
  }
}

/**
 * Follows `job` (e.g. "jobs/123") to its terminal event. After a dropped stream (UNAVAILABLE,
 * or an end without a terminal event) it reconnects with `afterSequence` = the last logged
 * event seen: every logged event is yielded exactly once, in order. Each (re)connection also
 * yields a snapshot first; transient events (heartbeats, queue positions) pass through.
 *
 * ```ts
 * for await (const event of watchJob(client, "jobs/123")) console.log(event.event.case);
 * ```
 */
export function watchJob(
  client: LimnerClient,
  job: string,
  options: WatchOptions = {},
): AsyncGenerator<JobEvent> {
  return follow(client, job, undefined, options);
}

/**
 * Starts a GenerateImage job and follows it like watchJob. Without a `requestId`, a random
 * one is set, so re-sending the request after a drop before the first event returns the same
 * job instead of starting another.
 */
export function generateImage(
  client: LimnerClient,
  request: MessageInitShape<typeof GenerateImageRequestSchema>,
  options: WatchOptions = {},
): AsyncGenerator<JobEvent> {
  const withId = { ...request, requestId: request.requestId || randomUUID() };
  return follow(client, "", (signal) => client.images.generateImage(withId, { signal }), options);
}

/**
 * Uploads the image file at `path`. Content-addressed: the same bytes twice give the same
 * asset, with `created: false` the second time.
 */
export async function uploadImage(
  client: LimnerClient,
  path: string,
  options: { displayName?: string; callOptions?: CallOptions } = {},
): Promise<UploadImageResponse> {
  const content = await readFile(path);
  return client.images.uploadImage(
    { content, displayName: options.displayName ?? basename(path) },
    options.callOptions,
  );
}

/**
 * Streams the asset `name` (e.g. "assets/<sha256>") into the file at `path` and returns the
 * byte count. Writes `path + ".part"` and renames it only after checking chunk offsets, the
 * announced size and, for content-addressed names, the sha256; a failed download leaves no
 * file at `path`.
 */
export async function downloadAsset(
  client: LimnerClient,
  name: string,
  path: string,
  callOptions?: CallOptions,
): Promise<number> {
  const partial = `${path}.part`;
  const file = await open(partial, "w");
  const digest = createHash("sha256");
  let written = 0;
  let expected = -1;
  try {
    for await (const chunk of client.images.readAssetContent({ name }, callOptions)) {
      if (chunk.asset && chunk.asset.sizeBytes > 0n) expected = Number(chunk.asset.sizeBytes);
      if (Number(chunk.offset) !== written) {
        throw new Error(`download ${name}: chunk at offset ${chunk.offset}, expected ${written}`);
      }
      await file.write(chunk.data);
      digest.update(chunk.data);
      written += chunk.data.length;
    }
    if (expected >= 0 && written !== expected) {
      throw new Error(`download ${name}: got ${written} bytes, the asset has ${expected}`);
    }
    const want = name.startsWith("assets/") ? name.slice("assets/".length) : "";
    const got = digest.digest("hex");
    if (/^[0-9a-f]{64}$/.test(want) && got !== want) {
      throw new Error(`download ${name}: content has sha256 ${got}`);
    }
    await file.close();
    await rename(partial, path);
    return written;
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw error;
  }
}

/**
 * The first detail of a schema's type in an error's google.rpc.Status, e.g.
 * `findDetail(error, ErrorInfoSchema)?.reason === "MODEL_CAPABILITY_UNSUPPORTED"`.
 */
export function findDetail<Desc extends DescMessage>(
  error: unknown,
  schema: Desc,
): MessageShape<Desc> | undefined {
  return ConnectError.from(error).findDetails(schema)[0];
}
