// Generates an image with a Limner server, prints the job's progress as it streams, and saves
// the result:
//
//   npm run example -- --addr 127.0.0.1:50051 --prompt "a lighthouse at dusk" --out lighthouse.png
import { parseArgs } from "node:util";

import {
  ConnectError,
  createLimnerClient,
  downloadAsset,
  ErrorInfoSchema,
  findDetail,
  generateImage,
  JobStage,
  type ImageOutput,
  type JobProgress,
} from "../src/index.js";

const { values } = parseArgs({
  options: {
    addr: { type: "string", default: process.env.LIMNER_ADDR ?? "127.0.0.1:50051" },
    prompt: { type: "string", default: "a lighthouse at dusk" },
    model: { type: "string", default: "" },
    width: { type: "string", default: "512" },
    height: { type: "string", default: "512" },
    seed: { type: "string", default: "7" },
    out: { type: "string", default: "limner-example.png" },
    // TLS: a CA file (and, for mTLS, a client certificate and key) switches to https://.
    "ca-cert": { type: "string", default: process.env.LIMNER_CA_CERT ?? "" },
    "client-cert": { type: "string", default: process.env.LIMNER_CLIENT_CERT ?? "" },
    "client-key": { type: "string", default: process.env.LIMNER_CLIENT_KEY ?? "" },
    tls: { type: "boolean", default: false },
  },
});

function progressLine(p: JobProgress): string {
  const stage = JobStage[p.stage].toLowerCase();
  if (p.totalSteps <= 0) return stage + (p.queuePosition ? ` queue position ${p.queuePosition}` : "");
  const done = Math.floor((p.step * 20) / p.totalSteps);
  const eta = p.eta && p.step < p.totalSteps ? ` eta ${(Number(p.eta.seconds) + p.eta.nanos / 1e9).toFixed(1)}s` : "";
  return `${stage.padEnd(10)} [${"#".repeat(done)}${".".repeat(20 - done)}] ${p.step}/${p.totalSteps}${eta}`;
}

const tls = values.tls || Boolean(values["ca-cert"] || values["client-cert"] || values["client-key"]);
const client = createLimnerClient(`${tls ? "https" : "http"}://${values.addr}`, {
  apiKey: process.env.LIMNER_API_KEY,
  tls: tls
    ? {
        caFile: values["ca-cert"] || undefined,
        certFile: values["client-cert"] || undefined,
        keyFile: values["client-key"] || undefined,
      }
    : undefined,
});
try {
  let image: ImageOutput | undefined;
  const request = {
    prompt: values.prompt,
    model: values.model,
    options: { width: Number(values.width), height: Number(values.height), seed: BigInt(values.seed) },
  };
  for await (const event of generateImage(client, request)) {
    switch (event.event.case) {
      case "snapshot":
        console.log(`job ${event.event.value.name}`);
        break;
      case "progress":
        console.log(progressLine(event.event.value));
        break;
      case "warning":
        console.log(`warning ${event.event.value.code}: ${event.event.value.message}`);
        break;
      case "completed":
        image = event.event.value.images[0];
        break;
      case "failed":
        throw new Error(`job failed: ${event.event.value.message}`);
      case "cancelled":
        throw new Error(`job cancelled: ${event.event.value.reason}`);
    }
  }
  if (!image) throw new Error("the job ended without an image");
  const written = await downloadAsset(client, image.asset, values.out);
  console.log(
    `completed: ${image.asset} ${image.width}x${image.height} ${image.mimeType}, ${written} bytes saved to ${values.out}`,
  );
} catch (error) {
  const reason = findDetail(error, ErrorInfoSchema)?.reason;
  console.error(`limner-example: ${ConnectError.from(error).message}${reason ? ` (${reason})` : ""}`);
  process.exitCode = 1;
} finally {
  client.close();
}
