// A small vision-gateway client with typed stubs (Connect-ES over the gRPC protocol): caption,
// detect, upload. Build it first (see README.md), then:
//
//   node dist/example.js --target HOST:PORT --ca_file ca.pem --token_file token photo.png
//
// It captions the image (printing the text as it streams in), detects objects (boxes in pixels),
// uploads the image in chunks, and deletes the uploaded file again. Every call carries the bearer
// token; a RESOURCE_EXHAUSTED with a RetryInfo is retried after the delay the server asks for.
import { createHash } from "node:crypto";
import { createReadStream, readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
import {
  File_State,
  UploadRequestSchema,
  VisionService,
  type File,
  type UploadRequest,
} from "./gen/vision/v1/vision_pb.js";

type Vision = Client<typeof VisionService>;

/** The gRPC name of a status code: Code.ResourceExhausted is "RESOURCE_EXHAUSTED". */
function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Prints a failed call's code, message and google.rpc details; returns its RetryInfo delay. */
function describe(what: string, error: ConnectError): number | undefined {
  const lines = [`${what} failed: ${codeName(error.code)}: ${error.rawMessage}`];
  for (const info of error.findDetails(ErrorInfoSchema)) {
    lines.push(`  ErrorInfo reason ${info.reason} (domain ${info.domain})`);
  }
  let retryDelayMs: number | undefined;
  for (const retry of error.findDetails(RetryInfoSchema)) {
    if (retry.retryDelay) {
      retryDelayMs = durationMs(retry.retryDelay);
      lines.push(`  RetryInfo retry_delay ${retryDelayMs / 1000}s`);
    }
  }
  for (const quota of error.findDetails(QuotaFailureSchema)) {
    for (const v of quota.violations) lines.push(`  QuotaFailure ${v.subject}`);
  }
  for (const bad of error.findDetails(BadRequestSchema)) {
    for (const v of bad.fieldViolations) lines.push(`  BadRequest ${v.field}: ${v.description}`);
  }
  const requestId = error.metadata.get("x-request-id");
  if (requestId) lines.push(`  request id ${requestId}`);
  console.error(lines.join("\n"));
  return retryDelayMs;
}

/**
 * Runs call(); on RESOURCE_EXHAUSTED with a RetryInfo, waits that long and tries again. A call
 * that has already printed results (started() is true) is not retried: it would print them twice.
 */
async function withRetries<T>(what: string, maxAttempts: number, call: () => Promise<T>,
                              started: () => boolean = () => false): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (thrown) {
      const error = ConnectError.from(thrown);
      const delayMs = describe(what, error);
      if (error.code !== Code.ResourceExhausted || delayMs === undefined ||
          attempt >= maxAttempts || started()) {
        throw error;
      }
      console.log(`retrying ${what} in ${delayMs / 1000}s (attempt ${attempt + 1} of ${maxAttempts})`);
      await sleep(delayMs);
    }
  }
}

/** Prints the caption piece by piece as the server streams it. */
async function caption(client: Vision, image: Uint8Array, maxAttempts: number): Promise<void> {
  let pieces = 0;
  await withRetries("caption", maxAttempts, async () => {
    let finishReason = "";
    let totalTokens = 0;
    const stream = client.caption(
      { images: [{ source: { case: "content", value: image } }] }, { timeoutMs: 60_000 });
    for await (const response of stream) {
      process.stdout.write(response.text);
      pieces++;
      finishReason = response.finishReason;
      totalTokens = response.usage?.totalTokens ?? 0;
    }
    console.log(`\n(caption: ${pieces} pieces, finish_reason ${finishReason}, ${totalTokens} tokens)`);
  }, () => pieces > 0);
}

/** Prints each detected object's box in pixels of the upright image. */
async function detect(client: Vision, image: Uint8Array, maxAttempts: number): Promise<void> {
  let received = 0;
  await withRetries("detect", maxAttempts, async () => {
    const stream = client.detect(
      { image: { source: { case: "content", value: image } } }, { timeoutMs: 60_000 });
    for await (const { event } of stream) {
      received++;
      switch (event.case) {
        case "imageInfo":
          console.log(`image: ${event.value.width}x${event.value.height} ${event.value.mimeType}`);
          break;
        case "detection": {
          const { index, label, box } = event.value;
          console.log(`object ${index} ${label}: x ${box?.xMin}-${box?.xMax}, ` +
                      `y ${box?.yMin}-${box?.yMax} px`);
          break;
        }
        case "summary":
          console.log(`summary: ${event.value.count} objects, ` +
                      `finish_reason ${event.value.finishReason}`);
          break;
      }
    }
  }, () => received > 0);
}

/** The Upload stream: a header, then the file's bytes in chunks, read as they are sent. */
async function* uploadRequests(path: string, size: number, sha256: string, chunkSize: number,
                               onChunk: () => void): AsyncGenerator<UploadRequest> {
  yield create(UploadRequestSchema, {
    part: { case: "header", value: { displayName: basename(path), sizeBytes: BigInt(size), sha256 } },
  });
  for await (const chunk of createReadStream(path, { highWaterMark: chunkSize })) {
    onChunk();
    yield create(UploadRequestSchema, { part: { case: "chunk", value: chunk as Buffer } });
  }
}

async function upload(client: Vision, path: string, chunkSize: number,
                      maxAttempts: number): Promise<File> {
  const size = statSync(path).size;
  const hash = createHash("sha256");
  for await (const block of createReadStream(path)) hash.update(block as Buffer);
  const sha256 = hash.digest("hex");
  return withRetries("upload", maxAttempts, async () => {
    let chunks = 0;
    const file = await client.upload(
      uploadRequests(path, size, sha256, chunkSize, () => chunks++), { timeoutMs: 600_000 });
    console.log(`uploaded ${file.name} (${file.sizeBytes} bytes in ${chunks} chunks, ` +
                `${file.width}x${file.height} px, sha256 ${file.sha256}, ` +
                `STATE_${File_State[file.state]})`);
    return file;
  });
}

/** Adds "authorization: Bearer <token>" to every call. */
function bearer(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      target: { type: "string", default: "localhost:50051" },  // host:port of the gateway
      ca_file: { type: "string" },        // PEM CA bundle (default: Node's roots)
      token_file: { type: "string" },     // bearer token (else $VISION_TOKEN)
      plaintext: { type: "boolean", default: false },  // no TLS (local gateway)
      chunk_size: { type: "string", default: String(1 << 20) },  // upload chunk size, bytes
      max_attempts: { type: "string", default: "3" },
    },
  });
  if (positionals.length !== 1) {
    console.error("usage: example.js [--target H:P] [--ca_file F] [--token_file F] " +
                  "[--plaintext] [--chunk_size N] [--max_attempts N] IMAGE");
    return 2;
  }
  const [path] = positionals;
  const token = values.token_file ? readFileSync(values.token_file, "utf8").trim()
                                  : process.env.VISION_TOKEN ?? "";
  const transport = createGrpcTransport({
    baseUrl: `${values.plaintext ? "http" : "https"}://${values.target}`,
    nodeOptions: values.ca_file ? { ca: readFileSync(values.ca_file) } : {},
    interceptors: token ? [bearer(token)] : [],
  });
  const client = createClient(VisionService, transport);
  const image = readFileSync(path);
  const maxAttempts = Number(values.max_attempts);
  try {
    console.log("== caption");
    await caption(client, image, maxAttempts);
    console.log("== detect");
    await detect(client, image, maxAttempts);
    console.log("== upload");
    const file = await upload(client, path, Number(values.chunk_size), maxAttempts);
    await withRetries("delete", maxAttempts,
                      () => client.deleteFile({ name: file.name }, { timeoutMs: 30_000 }));
    console.log(`deleted ${file.name}`);
  } catch (thrown) {  // already described by withRetries
    console.error(`error: ${codeName(ConnectError.from(thrown).code)}`);
    return 1;
  }
  return 0;
}

process.exitCode = await main();
