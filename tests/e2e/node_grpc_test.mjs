// @grpc/grpc-js + @grpc/proto-loader (a gRPC client nobody here wrote) against vision-server in
// front of gemini-emulator.
//   node node_grpc_test.mjs <gemini-emulator> <vision-server>
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

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

before(async () => {
  const { baseUrl } = await startEmulator(emulatorBinary, 'test-key');
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
