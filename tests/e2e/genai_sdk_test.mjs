// The official @google/genai SDK against gemini-emulator: proves the emulator speaks the Gemini
// REST wire format the way Google's own client expects it.
//   node genai_sdk_test.mjs <gemini-emulator> [<vision-server>]
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ApiError, GoogleGenAI } from '@google/genai';

import { redRectanglePng } from './lib/png.mjs';
import { startEmulator, stopAll, watchdog } from './lib/processes.mjs';

const [emulatorBinary] = process.argv.slice(2);
if (!emulatorBinary) {
  console.error('usage: genai_sdk_test.mjs <gemini-emulator> [<vision-server>]');
  process.exit(2);
}
watchdog(90_000);

const MODEL = 'gemini-3-flash-preview';
const KEY = 'test-key';
const WIDTH = 320;
const HEIGHT = 240;
const png = redRectanglePng(WIDTH, HEIGHT);
const contents = [{
  role: 'user',
  parts: [
    { inlineData: { mimeType: 'image/png', data: png.toString('base64') } },
    { text: 'Caption this image.' },
  ],
}];

let baseUrl;
let ai;

before(async () => {
  ({ baseUrl } = await startEmulator(emulatorBinary, KEY));
  ai = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl } });
});

after(() => stopAll());

test('generateContent with an inline PNG describes it', async () => {
  const response = await ai.models.generateContent({ model: MODEL, contents });
  const text = response.text;
  assert.ok(text, 'empty text');
  assert.match(text, /\bred\b/i, `no colour in: ${text}`);
  assert.ok(text.includes(`${WIDTH}x${HEIGHT}`), `no size in: ${text}`);
  assert.equal(response.candidates[0].finishReason, 'STOP');
  assert.ok(response.usageMetadata.promptTokenCount > 258, 'image tokens missing from usage');
});

test('generateContentStream streams the same text in several chunks', async () => {
  const whole = (await ai.models.generateContent({ model: MODEL, contents })).text;
  const stream = await ai.models.generateContentStream({ model: MODEL, contents });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 2, `expected several chunks, got ${chunks.length}`);
  const joined = chunks.map((chunk) => chunk.text ?? '').join('');
  assert.equal(joined, whole);
  const last = chunks.at(-1);
  assert.ok(last.usageMetadata, 'no usage on the last chunk');
  assert.ok(last.usageMetadata.totalTokenCount > 0);
  assert.ok(last.usageMetadata.candidatesTokenCount > 0);
  assert.equal(last.candidates[0].finishReason, 'STOP');
});

test('countTokens counts the image and the text', async () => {
  const response = await ai.models.countTokens({ model: MODEL, contents });
  assert.ok(response.totalTokens > 258, `totalTokens ${response.totalTokens}`);
});

test('models.list pages through the models list; a retired model is a 404 ApiError', async () => {
  const pager = await ai.models.list({ config: { pageSize: 2 } });
  const models = [];
  for await (const model of pager) models.push(model);
  const names = models.map((m) => m.name);
  assert.ok(names.includes(`models/${MODEL}`), `no ${MODEL} in ${names}`);
  assert.ok(!names.includes('models/gemini-2.5-flash'), 'a retired model is listed');
  assert.equal(new Set(names).size, names.length, `a page was read twice: ${names}`);
  assert.ok(names.length > 2, `only one page was read: ${names}`);
  const flash = models.find((m) => m.name === `models/${MODEL}`);
  assert.equal(flash.inputTokenLimit, 1048576);
  assert.equal(flash.outputTokenLimit, 65536);
  assert.equal(flash.thinking, true);
  assert.ok(flash.supportedActions.includes('generateContent'), `${flash.supportedActions}`);
  const one = await ai.models.get({ model: MODEL });
  assert.equal(one.displayName, flash.displayName);
  await assert.rejects(
      ai.models.generateContent({ model: 'gemini-2.5-flash', contents }),
      (error) => {
        assert.ok(error instanceof ApiError, `not an ApiError: ${error}`);
        assert.equal(error.status, 404);
        assert.match(error.message, /models\/gemini-2\.5-flash is not found for API version v1/);
        return true;
      });
});

test('a wrong API key is a 400 ApiError with API_KEY_INVALID', async () => {
  const wrong = new GoogleGenAI({ apiKey: 'wrong-key', httpOptions: { baseUrl } });
  await assert.rejects(
      wrong.models.generateContent({ model: MODEL, contents }),
      (error) => {
        assert.ok(error instanceof ApiError, `not an ApiError: ${error}`);
        assert.equal(error.status, 400);
        assert.match(error.message, /API_KEY_INVALID/);
        assert.ok(!error.message.includes('wrong-key'), 'the key was echoed in the error');
        return true;
      });
});

// The Files API as the SDK drives it: a file over 8 MiB goes up in several 8 MiB chunks
// (resumable protocol), then files.get, files.list and files.delete.
test('files.upload of more than 8 MiB in chunks, then get, list and delete', async () => {
  const size = 8 * 1024 * 1024 * 2 + 12345;
  const bytes = Buffer.alloc(size);
  png.copy(bytes);  // a PNG signature in front; the rest is padding the emulator only stores
  for (let i = png.length; i < size; i += 4096) bytes[i] = i & 0xff;
  await fetch(`${baseUrl}/emulator/requests`, { method: 'DELETE' });
  const file = await ai.files.upload({
    file: new Blob([bytes], { type: 'image/png' }),
    config: { mimeType: 'image/png', displayName: 'big upload' },
  });
  assert.match(file.name, /^files\/[a-z0-9-]+$/);
  assert.equal(file.displayName, 'big upload');
  assert.equal(String(file.sizeBytes), String(size));
  const hex = (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex');
  assert.equal(Buffer.from(file.sha256Hash, 'base64').toString(), hex);

  const recorded = await (await fetch(`${baseUrl}/emulator/requests`)).json();
  const chunks = recorded.filter((r) => r.target.includes('upload_id='));
  assert.equal(chunks.length, 3, `expected 3 upload requests, got ${chunks.length}`);
  assert.equal(chunks[0].body_size, 8 * 1024 * 1024);
  const commands = chunks.map((r) => r.headers.find(([k]) => k.toLowerCase() === 'x-goog-upload-command')[1]);
  assert.deepEqual(commands, ['upload', 'upload', 'upload, finalize']);

  const got = await ai.files.get({ name: file.name });
  assert.equal(got.state, 'ACTIVE');
  assert.equal(got.sha256Hash, file.sha256Hash);
  const listed = [];
  for await (const f of await ai.files.list({ config: { pageSize: 10 } })) listed.push(f.name);
  assert.ok(listed.includes(file.name), `not listed: ${listed}`);
  await ai.files.delete({ name: file.name });
  await assert.rejects(ai.files.get({ name: file.name }), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 403);
    return true;
  });
});
