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

const MODEL = 'gemini-2.5-flash';
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
