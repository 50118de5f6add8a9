// @grpc/grpc-js + @grpc/proto-loader (a gRPC client nobody here wrote) against vision-server in
// front of gemini-emulator.
//   node node_grpc_test.mjs <gemini-emulator> <vision-server>
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { createHash } from 'node:crypto';

import { GoogleGenAI } from '@google/genai';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

import { redRectanglePng } from './lib/png.mjs';
import { startEmulator, startServer, stopAll, watchdog } from './lib/processes.mjs';

const [emulatorBinary, serverBinary] = process.argv.slice(2);
if (!emulatorBinary || !serverBinary) {
  console.error('usage: node_grpc_test.mjs <gemini-emulator> <vision-server>');
  process.exit(2);
}
watchdog(90_000);

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const definition = protoLoader.loadSync('vision/v1/vision.proto', {
  includeDirs: [path.join(repo, 'proto'), '/usr/include'],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const vision = grpc.loadPackageDefinition(definition).vision.v1;

let client;
let emulatorUrl;

before(async () => {
  const { baseUrl } = await startEmulator(emulatorBinary, 'test-key');
  emulatorUrl = baseUrl;
  const { port } = await startServer(serverBinary, baseUrl, 'test-key');
  client = new vision.VisionService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

after(() => {
  client?.close();
  stopAll();
});

function deadline(seconds = 20) {
  return new Date(Date.now() + seconds * 1000);
}

// Runs a server-streaming call; resolves with {messages, error} once the stream ended.
function collect(call) {
  return new Promise((resolve) => {
    const messages = [];
    call.on('data', (message) => messages.push(message));
    call.on('error', (error) => resolve({ messages, error }));
    call.on('end', () => resolve({ messages, error: null }));
  });
}

test('Caption streams a caption naming the colour and the size', async () => {
  const call = client.Caption(
      { images: [{ content: redRectanglePng(320, 240) }], prompt: 'Describe the image.' },
      { deadline: deadline() });
  const { messages, error } = await collect(call);
  assert.equal(error, null, `stream failed: ${error?.message}`);
  assert.ok(messages.length >= 2, `expected a stream of pieces, got ${messages.length}`);
  const text = messages.map((m) => m.text).join('');
  assert.match(text, /\bred\b/i, `no colour in: ${text}`);
  assert.ok(text.includes('320x240'), `no size in: ${text}`);
  const last = messages.at(-1);
  assert.equal(last.finishReason, 'STOP');
  assert.ok(last.usage && last.usage.totalTokens > 258, `usage: ${JSON.stringify(last.usage)}`);
  assert.ok(last.modelVersion.length > 0);
  for (const message of messages.slice(0, -1)) assert.equal(message.finishReason, '');
});

test('Caption without images is INVALID_ARGUMENT', async () => {
  const call = client.Caption({ images: [], prompt: 'Describe.' }, { deadline: deadline() });
  const { messages, error } = await collect(call);
  assert.equal(messages.length, 0);
  assert.ok(error, 'expected an error');
  assert.equal(error.code, grpc.status.INVALID_ARGUMENT, `got ${error.code}: ${error.details}`);
});

test('Caption with bytes that are not an image is INVALID_ARGUMENT', async () => {
  const call = client.Caption({ images: [{ content: Buffer.from('not an image at all') }] },
                              { deadline: deadline() });
  const { error } = await collect(call);
  assert.ok(error, 'expected an error');
  assert.equal(error.code, grpc.status.INVALID_ARGUMENT, `got ${error.code}: ${error.details}`);
});

test('CountTokens counts the image', async () => {
  const response = await new Promise((resolve, reject) => {
    client.CountTokens({ images: [{ content: redRectanglePng(320, 240) }] },
                       { deadline: deadline() },
                       (error, reply) => (error ? reject(error) : resolve(reply)));
  });
  assert.ok(response.totalTokens > 258, `totalTokens ${response.totalTokens}`);
  assert.equal(response.estimatedImageTokens, 258);
});

// Client-streaming Upload: the header, then the bytes in pieces; resolves with {file, error}.
function upload(bytes, header = {}) {
  return new Promise((resolve) => {
    const call = client.Upload({ deadline: deadline() }, (error, file) => resolve({ file, error }));
    call.write({ header: { sizeBytes: String(bytes.length), ...header } });
    for (let at = 0; at < bytes.length; at += 64 * 1024) {
      call.write({ chunk: bytes.subarray(at, at + 64 * 1024) });
    }
    call.end();
  });
}

test('Upload streams a file through the gateway; Detect on it gives pixel boxes', async () => {
  const png = redRectanglePng(320, 240);
  const sha256 = createHash('sha256').update(png).digest('hex');
  const { file, error } = await upload(png, { displayName: 'node upload', sha256 });
  assert.equal(error, null, `upload failed: ${error?.message}`);
  assert.match(file.name, /^files\/g1-/);
  assert.equal(file.sha256, sha256);
  assert.equal(file.width, 320);
  assert.equal(file.height, 240);
  assert.equal(file.state, 'STATE_ACTIVE');

  const { messages, error: detectError } = await collect(
      client.Detect({ image: { file: file.name } }, { deadline: deadline() }));
  assert.equal(detectError, null, `detect failed: ${detectError?.message}`);
  assert.equal(messages[0].imageInfo.width, 320);
  const detection = messages.find((m) => m.detection)?.detection;
  assert.ok(detection && detection.box.xMax > detection.box.xMin, JSON.stringify(messages));

  // Uploading the same bytes again with their hash returns the same file (dedupe).
  const again = await upload(png, { sha256 });
  assert.equal(again.error, null);
  assert.equal(again.file.name, file.name);
});

test('a file the official SDK uploaded is usable through the gateway', async () => {
  const ai = new GoogleGenAI({ apiKey: 'test-key', httpOptions: { baseUrl: emulatorUrl } });
  const uploaded = await ai.files.upload({
    file: new Blob([redRectanglePng(200, 100)], { type: 'image/png' }),
    config: { mimeType: 'image/png' },
  });
  const { messages, error } = await collect(client.Caption(
      { images: [{ file: uploaded.uri }], prompt: 'Describe the image.' },
      { deadline: deadline() }));
  assert.equal(error, null, `caption failed: ${error?.message}`);
  const text = messages.map((m) => m.text).join('');
  assert.match(text, /\bred\b/i, `no colour in: ${text}`);
  assert.ok(text.includes('200x100'), `no size in: ${text}`);

  const { file, error: getError } = await new Promise((resolve) => client.GetFile(
      { name: uploaded.name }, { deadline: deadline() }, (e, f) => resolve({ file: f, error: e })));
  assert.equal(getError, null);
  assert.equal(file.width, 0, 'the gateway cannot know the size of a file it did not upload');
});
