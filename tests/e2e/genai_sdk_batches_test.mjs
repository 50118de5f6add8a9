// The official @google/genai SDK's Batch API against gemini-emulator (issue #20): batches.create
// with inline requests and with an uploaded JSONL file, get until done, list, cancel, delete, and
// files.download of the responses file.
//   node genai_sdk_batches_test.mjs <gemini-emulator> [<vision-server>]
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ApiError, GoogleGenAI } from '@google/genai';

import { redRectanglePng } from './lib/png.mjs';
import { startEmulator, stopAll, watchdog } from './lib/processes.mjs';

const [emulatorBinary] = process.argv.slice(2);
if (!emulatorBinary) {
  console.error('usage: genai_sdk_batches_test.mjs <gemini-emulator> [<vision-server>]');
  process.exit(2);
}
watchdog(90_000);

const MODEL = 'gemini-3-flash-preview';
const KEY = 'test-key';
const png = redRectanglePng(320, 240);
const contents = [{
  role: 'user',
  parts: [
    { inlineData: { mimeType: 'image/png', data: png.toString('base64') } },
    { text: 'Caption this image.' },
  ],
}];
const DONE = new Set(['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED',
  'JOB_STATE_EXPIRED']);

let baseUrl;
let ai;
let scratch;

async function admin(path, body) {
  const response = await fetch(`${baseUrl}/emulator/${path}`, {
    method: 'POST', body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, await response.text());
}

// Polls batches.get as an SDK user does, until the job is done (the emulator's processing time
// is 100 ms by default; the watchdog bounds the loop).
async function waitDone(name) {
  for (;;) {
    const job = await ai.batches.get({ name });
    if (DONE.has(job.state)) return job;
    assert.ok(['JOB_STATE_PENDING', 'JOB_STATE_RUNNING'].includes(job.state), job.state);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

before(async () => {
  ({ baseUrl } = await startEmulator(emulatorBinary, KEY));
  ai = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl } });
  scratch = mkdtempSync(join(tmpdir(), 'genai-batches-'));
});

after(() => {
  stopAll();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('batches.create with inline requests, get until done: answers inline with metadata', async () => {
  const created = await ai.batches.create({
    model: MODEL,
    src: [
      { contents, metadata: { key: 'one' } },
      { contents, metadata: { key: 'two' }, config: { temperature: 0 } },
    ],
    config: { displayName: 'inline batch' },
  });
  assert.match(created.name, /^batches\/[a-z0-9-]+$/);
  assert.equal(created.state, 'JOB_STATE_PENDING');
  assert.equal(created.displayName, 'inline batch');
  assert.equal(created.model, `models/${MODEL}`);

  const job = await waitDone(created.name);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED');
  assert.ok(job.endTime, 'no endTime');
  const answers = job.dest.inlinedResponses;
  assert.equal(answers.length, 2);
  assert.deepEqual(answers.map((a) => a.metadata.key), ['one', 'two']);
  for (const answer of answers) {
    const text = answer.response.candidates[0].content.parts[0].text;
    assert.match(text, /\bred\b/i, `no colour in ${text}`);
  }
});

test('batches.create from an uploaded JSONL file; files.download of the responses file', async () => {
  const line = (key) => JSON.stringify({ key, request: { contents } });
  const jsonl = `${line('a')}\n${line('b')}\n${line('c')}\n`;
  const input = await ai.files.upload({
    file: new Blob([jsonl], { type: 'application/jsonl' }),
    config: { mimeType: 'application/jsonl', displayName: 'batch input' },
  });
  // Line "b" fails as Gemini fails a line: an error object in its place.
  await admin('script', {
    batch_key: 'b', status: 429,
    body: { error: { code: 429, message: 'Resource has been exhausted.', status: 'RESOURCE_EXHAUSTED' } },
  });
  const created = await ai.batches.create({
    model: MODEL, src: input.name, config: { displayName: 'file batch' },
  });
  const job = await waitDone(created.name);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED');
  assert.match(job.dest.fileName, /^files\/batch-[a-z0-9-]+$/);

  const path = join(scratch, 'responses.jsonl');
  await ai.files.download({ file: job.dest.fileName, downloadPath: path });
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.key), ['a', 'b', 'c']);
  assert.match(lines[0].response.candidates[0].content.parts[0].text, /\bred\b/i);
  assert.equal(lines[1].error.code, 429);
  assert.equal(lines[1].error.status, 'RESOURCE_EXHAUSTED');
  assert.equal(lines[1].response, undefined);
  assert.ok(lines[2].response.candidates[0].content.parts[0].text);
});

test('batches.list pages newest first; cancel; delete', async () => {
  // Long enough that the job is still pending when it is cancelled.
  await admin('config', { batch_processing_ms: 3_600_000 });
  const names = [];
  for (const displayName of ['list 1', 'list 2', 'list 3']) {
    names.push((await ai.batches.create({
      model: MODEL, src: [{ contents }], config: { displayName },
    })).name);
  }
  const listed = [];
  const pager = await ai.batches.list({ config: { pageSize: 2 } });
  for await (const job of pager) listed.push(job.name);
  assert.equal(new Set(listed).size, listed.length, `a page was read twice: ${listed}`);
  assert.deepEqual(listed.slice(0, 3), [...names].reverse());

  await ai.batches.cancel({ name: names[1] });
  const cancelled = await ai.batches.get({ name: names[1] });
  assert.equal(cancelled.state, 'JOB_STATE_CANCELLED');

  await ai.batches.delete({ name: names[0] });
  await assert.rejects(ai.batches.get({ name: names[0] }), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 404);
    return true;
  });
  await admin('config', { batch_processing_ms: 100 });
});

test('an unknown model and a missing input file are ApiErrors', async () => {
  await assert.rejects(
    ai.batches.create({ model: 'no-such-model', src: [{ contents }], config: { displayName: 'x' } }),
    (error) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 404);
      assert.match(error.message, /not supported for batchGenerateContent/);
      return true;
    });
  await assert.rejects(
    ai.batches.create({ model: MODEL, src: 'files/nosuchfile', config: { displayName: 'x' } }),
    (error) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 403);
      return true;
    });
});
