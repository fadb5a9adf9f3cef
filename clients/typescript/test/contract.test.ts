// Contract tests against a real Limner server at LIMNER_ADDR (host:port). tests/contract starts
// one with a slow offline provider (10 steps of 0.2 s), so a job is still running when a test
// drops its stream or cancels it. Without LIMNER_ADDR every test skips.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";

import type { Interceptor } from "@connectrpc/connect";

import {
  Code,
  ConnectError,
  createLimnerClient,
  downloadAsset,
  ErrorInfoSchema,
  findDetail,
  generateImage,
  isLogged,
  JobStage,
  JobState,
  PreconditionFailureSchema,
  uploadImage,
  watchJob,
  type JobEvent,
  type LimnerClient,
} from "../src/index.js";

const address = process.env.LIMNER_ADDR ?? "";
const skip = address
  ? false
  : "LIMNER_ADDR is not set: start a server (limner serve --address 127.0.0.1:50051) and run " +
    "LIMNER_ADDR=127.0.0.1:50051 npm test; tests/contract does this in CI";
const baseUrl = `http://${address}`;

const request = (prompt: string, seed: number) => ({
  prompt,
  options: { width: 96, height: 64, seed: BigInt(seed) },
});

const sequences = (events: JobEvent[]) => events.filter(isLogged).map((e) => e.sequence);

/** Logged sequences must be exactly 1..n: nothing lost, nothing repeated. */
function assertOneToN(seqs: bigint[]) {
  assert.ok(seqs.length > 0, "no logged events");
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => BigInt(i + 1)),
    `logged sequences are not 1..n (lost or repeated events): ${seqs}`,
  );
}

/** A GENERATING progress event with at least one step done and more to come. */
function midJob(event: JobEvent): boolean {
  if (event.event.case !== "progress") return false;
  const p = event.event.value;
  return p.stage === JobStage.GENERATING && p.step >= 1 && p.step < p.totalSteps;
}

async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe("@limner/client against a real server", { skip, concurrency: true }, () => {
  let client: LimnerClient;
  let dir: string;

  before(async () => {
    client = createLimnerClient(baseUrl);
    dir = await mkdtemp(join(tmpdir(), "limner-ts-"));
  });

  after(async () => {
    client.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("lists the built-in models", async () => {
    const { models } = await client.models.listModels({});
    const names = models.map((m) => m.name);
    assert.ok(names.includes("models/offline-image"), `${names}`);
    assert.ok(names.includes("models/offline-writer"), `${names}`);
  });

  test("generates an image and follows its stream to completion", async () => {
    const events = await collect(generateImage(client, request("a lighthouse at dusk", 7)));
    assert.equal(events[0].event.case, "snapshot");
    const last = events[events.length - 1];
    assert.equal(last.event.case, "completed");
    assertOneToN(sequences(events));
    const steps = events.flatMap((e) =>
      e.event.case === "progress" && e.event.value.totalSteps > 0 ? [e.event.value] : [],
    );
    assert.ok(steps.length >= 2, "step progress");
    assert.deepEqual(
      steps.map((p) => p.step),
      steps.map((p) => p.step).sort((a, b) => a - b),
    );
    assert.equal(steps[steps.length - 1].step, steps[steps.length - 1].totalSteps);
    if (last.event.case !== "completed") throw new Error("unreachable");
    const image = last.event.value.images[0];
    assert.deepEqual(
      [image.width, image.height, image.mimeType, image.seed],
      [96, 64, "image/png", 7n],
    );
  });

  test("resumes a dropped stream with afterSequence, losing and repeating nothing", async () => {
    const drop = new AbortController();
    const seen: JobEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const response of client.images.generateImage(request("a dropped stream", 3), {
          signal: drop.signal,
        })) {
          seen.push(response.event!);
          if (midJob(response.event!)) drop.abort(); // the client goes away mid-job
        }
      })(),
      (error: unknown) => ConnectError.from(error).code === Code.Canceled,
    );
    const before = sequences(seen);
    const rest = await collect(
      watchJob(client, seen[0].job, { afterSequence: before[before.length - 1] }),
    );
    assert.equal(rest[0].event.case, "snapshot");
    assert.equal(rest[rest.length - 1].event.case, "completed");
    assert.ok(sequences(rest).length >= 2, "the job finished before the drop: slow the server");
    assertOneToN([...before, ...sequences(rest)]);
  });

  test("watchJob resumes by itself after UNAVAILABLE", async () => {
    // Fails the first WatchJob stream with UNAVAILABLE after 4 messages, like a lost connection.
    let watches = 0;
    const dropFirstWatch: Interceptor = (next) => async (req) => {
      const res = await next(req);
      if (!res.stream || req.method.name !== "WatchJob" || watches++ > 0) return res;
      const upstream = res.message;
      async function* dropping() {
        let left = 4;
        for await (const message of upstream) {
          if (left-- === 0) throw new ConnectError("test: connection lost", Code.Unavailable);
          yield message;
        }
      }
      return { ...res, message: dropping() };
    };
    const flaky = createLimnerClient(baseUrl, { interceptors: [dropFirstWatch] });
    try {
      const drop = new AbortController();
      let job = "";
      try {
        for await (const response of flaky.images.generateImage(request("a flaky network", 5), {
          signal: drop.signal,
        })) {
          job = response.event!.job;
          drop.abort();
        }
      } catch (error) {
        assert.equal(ConnectError.from(error).code, Code.Canceled);
      }
      const events = await collect(watchJob(flaky, job, { backoffMs: 10 }));
      assert.ok(watches >= 2, `WatchJob never resumed (${watches} streams): the job ended too soon`);
      assert.equal(events[events.length - 1].event.case, "completed");
      assertOneToN(sequences(events));
    } finally {
      flaky.close();
    }
  });

  test("reads a rich error's details", async () => {
    const error = await collect(
      generateImage(client, { ...request("a cat", 1), model: "models/offline-writer" }),
    ).then(
      () => assert.fail("a text-only model generated an image"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(error.code, Code.FailedPrecondition);
    const info = findDetail(error, ErrorInfoSchema);
    assert.equal(info?.reason, "MODEL_CAPABILITY_UNSUPPORTED");
    assert.equal(info?.domain, "limner.dev");
    assert.equal(info?.metadata.capability, "image output");
    const violations = findDetail(error, PreconditionFailureSchema)?.violations ?? [];
    assert.equal(violations.length, 1);
    assert.equal(violations[0].type, "CAPABILITY");
    assert.equal(violations[0].subject, "models/offline-writer");
    assert.match(violations[0].description, /image output/);
  });

  test("cancels a running job; its stream ends with cancelled", async () => {
    const events: JobEvent[] = [];
    let cancelled = false;
    for await (const event of generateImage(client, request("a cancelled job", 9))) {
      events.push(event);
      if (!cancelled && midJob(event)) {
        const { job } = await client.jobs.cancelJob({ name: event.job });
        assert.equal(job?.state, JobState.CANCELLED);
        cancelled = true;
      }
    }
    assert.ok(cancelled, "the job finished before it could be cancelled");
    const last = events[events.length - 1];
    assert.equal(last.event.case, "cancelled");
    assert.ok(last.event.value.reason);
    assertOneToN(sequences(events));
    const again = await client.jobs.cancelJob({ name: last.job }).then(
      () => assert.fail("cancelled twice"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(again.code, Code.FailedPrecondition);
    assert.equal(findDetail(again, ErrorInfoSchema)?.reason, "JOB_NOT_CANCELLABLE");
  });

  test("downloads the asset (size and sha256) and uploads it back", async () => {
    const events = await collect(generateImage(client, request("a downloaded fox", 11)));
    const last = events[events.length - 1];
    assert.equal(last.event.case, "completed");
    if (last.event.case !== "completed") throw new Error("unreachable");
    const image = last.event.value.images[0];
    const path = join(dir, "fox.png");
    const written = await downloadAsset(client, image.asset, path);
    const data = await readFile(path);
    assert.equal(BigInt(written), image.sizeBytes);
    assert.equal(BigInt(data.length), image.sizeBytes);
    assert.equal(image.asset, `assets/${createHash("sha256").update(data).digest("hex")}`);
    await assert.rejects(stat(`${path}.part`), { code: "ENOENT" });

    const uploaded = await uploadImage(client, path);
    assert.equal(uploaded.asset?.name, image.asset);
    assert.equal(uploaded.created, false, "the same bytes are deduplicated");

    await assert.rejects(
      downloadAsset(client, `assets/${"0".repeat(64)}`, join(dir, "missing.png")),
      (error: unknown) => ConnectError.from(error).code === Code.NotFound,
    );
    await assert.rejects(stat(join(dir, "missing.png")), { code: "ENOENT" });
  });

  test("the example program prints progress and saves the image", async () => {
    const example = fileURLToPath(new URL("../examples/generate-image.js", import.meta.url));
    const out = join(dir, "example.png");
    const { stdout } = await promisify(execFile)(process.execPath, [
      example,
      ...["--addr", address, "--prompt", "an example", "--width", "64", "--height", "64"],
      ...["--out", out],
    ]);
    assert.match(stdout, /^job jobs\//m);
    assert.match(stdout, /^generating +\[#+\.*\] \d+\/\d+/m);
    assert.match(stdout, /^completed: assets\/[0-9a-f]{64} 64x64 image\/png/m);
    assert.deepEqual([...(await readFile(out)).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  });
});
