// TLS and mTLS against real Limner servers. tests/contract starts two besides the plaintext
// one, with certificates it makes for the run, and passes them in:
//
//   LIMNER_TEST_TLS_ADDR      a server with a certificate signed by the test CA
//   LIMNER_TEST_MTLS_ADDR     the same, and it requires client certificates signed by that CA
//   LIMNER_TEST_CA_CERT       the test CA (PEM)
//   LIMNER_TEST_CLIENT_CERT   a client certificate signed by the test CA, and its key
//   LIMNER_TEST_CLIENT_KEY
//
// Without them the tests that need a server skip.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";

import {
  Code,
  ConnectError,
  createLimnerClient,
  generateImage,
  isLogged,
  type JobEvent,
  type LimnerClient,
  type LimnerClientOptions,
} from "../src/index.js";

const env = {
  addr: process.env.LIMNER_TEST_TLS_ADDR ?? "",
  mtlsAddr: process.env.LIMNER_TEST_MTLS_ADDR ?? "",
  ca: process.env.LIMNER_TEST_CA_CERT ?? "",
  cert: process.env.LIMNER_TEST_CLIENT_CERT ?? "",
  key: process.env.LIMNER_TEST_CLIENT_KEY ?? "",
};
const skip = Object.values(env).every(Boolean)
  ? false
  : "LIMNER_TEST_TLS_ADDR, LIMNER_TEST_MTLS_ADDR, LIMNER_TEST_CA_CERT, LIMNER_TEST_CLIENT_CERT " +
    "and LIMNER_TEST_CLIENT_KEY are not all set: .venv/bin/pytest tests/contract sets them";

/**
 * How Connect's Node transport reports a connection the TLS layer refused: Internal when the
 * client rejects the server's certificate ("unable to verify the first certificate"),
 * Canceled when the server closes the connection (a plaintext client, no client
 * certificate), Unavailable when the socket is reset first. grpc-go and grpcio say
 * Unavailable for all of them.
 */
const REFUSED = [Code.Internal, Code.Canceled, Code.Unavailable];

function assertRefused(code: Code | undefined, why: string) {
  const got = code === undefined ? "success" : Code[code];
  assert.ok(code !== undefined && REFUSED.includes(code), `${why}: got ${got}`);
}

/** Calls listModels with a fresh client and returns the error code, or undefined on success. */
async function listModelsCode(baseUrl: string, options: LimnerClientOptions): Promise<Code | undefined> {
  const client = createLimnerClient(baseUrl, { unaryTimeoutMs: 10_000, ...options });
  try {
    await client.models.listModels({});
    return undefined;
  } catch (error) {
    return ConnectError.from(error).code;
  } finally {
    client.close();
  }
}

describe("TLS and mTLS against real servers", { skip, concurrency: true }, () => {
  test("generates over https with a CA file", async () => {
    const client: LimnerClient = createLimnerClient(`https://${env.addr}`, { tls: { caFile: env.ca } });
    try {
      const { models } = await client.models.listModels({});
      assert.ok(models.some((m) => m.name === "models/offline-image"));
      const events: JobEvent[] = [];
      const request = { prompt: "over TLS", options: { width: 96, height: 64, seed: 21n } };
      for await (const event of generateImage(client, request)) events.push(event);
      assert.equal(events[events.length - 1].event.case, "completed");
      const seqs = events.filter(isLogged).map((e) => e.sequence);
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => BigInt(i + 1)),
      );
    } finally {
      client.close();
    }
  });

  test("refuses a plaintext client, one without the CA, and a wrong server name", async () => {
    assertRefused(await listModelsCode(`http://${env.addr}`, {}), "a plaintext client");
    assertRefused(await listModelsCode(`https://${env.addr}`, { tls: {} }), "no CA file");
    const wrongName = { tls: { caFile: env.ca, serverName: "limner.internal" } };
    assertRefused(await listModelsCode(`https://${env.addr}`, wrongName), "another server name");
  });

  test("mTLS lets in a client certificate signed by the client CA", async () => {
    const tls = { caFile: env.ca, certFile: env.cert, keyFile: env.key };
    assert.equal(await listModelsCode(`https://${env.mtlsAddr}`, { tls }), undefined);
  });

  test("mTLS refuses a client without a certificate", async () => {
    const code = await listModelsCode(`https://${env.mtlsAddr}`, { tls: { caFile: env.ca } });
    assertRefused(code, "no client certificate");
  });

  test("the example program connects with --ca-cert, --client-cert and --client-key", async () => {
    const dir = await mkdtemp(join(tmpdir(), "limner-ts-tls-"));
    try {
      const example = fileURLToPath(new URL("../examples/generate-image.js", import.meta.url));
      const out = join(dir, "example.png");
      const { stdout } = await promisify(execFile)(process.execPath, [
        example,
        ...["--addr", env.mtlsAddr, "--ca-cert", env.ca, "--client-cert", env.cert],
        ...["--client-key", env.key, "--prompt", "over mTLS", "--width", "64", "--height", "64"],
        ...["--out", out],
      ]);
      assert.match(stdout, /^completed: assets\/[0-9a-f]{64} 64x64 image\/png/m);
      assert.deepEqual([...(await readFile(out)).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("TLS options are checked when the client is created", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "limner-ts-tls-options-"));
    await writeFile(join(dir, "not.pem"), "hello\n");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("one clear error per problem", () => {
    const missing = join(dir, "missing.pem");
    assert.throws(
      () => createLimnerClient("http://127.0.0.1:1", { tls: { caFile: missing } }),
      /TLS options need an https:\/\/ base URL/,
    );
    assert.throws(
      () => createLimnerClient("https://127.0.0.1:1", { tls: { caFile: missing } }),
      (error: Error) => error.message.includes(`cannot read the TLS CA file ${missing}`),
    );
    assert.throws(
      () => createLimnerClient("https://127.0.0.1:1", { tls: { caFile: join(dir, "not.pem") } }),
      /is not PEM/,
    );
    assert.throws(
      () => createLimnerClient("https://127.0.0.1:1", { tls: { certFile: join(dir, "not.pem") } }),
      /set both certFile and keyFile/,
    );
  });
});
