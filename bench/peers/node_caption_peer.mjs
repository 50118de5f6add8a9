// The gateway a team would otherwise write: vision.v1 Caption in Node, the simplest idiomatic way
// (@grpc/grpc-js + @grpc/proto-loader for the server, the official @google/genai SDK for Gemini).
// It exists only to be measured against vision-server (bench/peer_compare.sh), on the same
// emulator with the same load. Caption only; the other RPCs answer UNIMPLEMENTED.
//
//   GEMINI_API_KEY=... node bench/peers/node_caption_peer.mjs --gemini_base_url URL [--port 0]
//
// Prints "node-peer listening on 127.0.0.1:PORT" once it serves.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { GoogleGenAI } from '@google/genai';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const DEFAULT_MODEL = 'gemini-3-flash-preview';
const DEFAULT_PROMPT = 'Caption this image.';

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    gemini_base_url: { type: 'string' },
  },
});

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

const ai = new GoogleGenAI({
  apiKey: process.env.GEMINI_API_KEY,
  httpOptions: flags.gemini_base_url ? { baseUrl: flags.gemini_base_url } : undefined,
});

// Caption: each image inline, then the prompt; every streamed chunk's text is one message, and the
// last one carries usage, finish reason and model version.
function caption(call) {
  const { images, prompt, options } = call.request;
  const parts = [];
  for (const image of images) {
    if (image.source !== 'content') {
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'inline images only' });
      return;
    }
    const bytes = image.content;
    const mimeType = bytes[0] === 0xff ? 'image/jpeg' : 'image/png';
    parts.push({ inlineData: { mimeType, data: bytes.toString('base64') } });
  }
  parts.push({ text: prompt || DEFAULT_PROMPT });

  const abort = new AbortController();
  call.on('cancelled', () => abort.abort());
  (async () => {
    const stream = await ai.models.generateContentStream({
      model: options?.model || DEFAULT_MODEL,
      contents: [{ role: 'user', parts }],
      config: { abortSignal: abort.signal },
    });
    let last;
    for await (const chunk of stream) {
      if (last) call.write({ text: last.text ?? '' });
      last = chunk;
    }
    const usage = last?.usageMetadata ?? {};
    call.write({
      text: last?.text ?? '',
      usage: {
        promptTokens: usage.promptTokenCount ?? 0,
        outputTokens: usage.candidatesTokenCount ?? 0,
        thinkingTokens: usage.thoughtsTokenCount ?? 0,
        totalTokens: usage.totalTokenCount ?? 0,
      },
      finishReason: last?.candidates?.[0]?.finishReason ?? '',
      modelVersion: last?.modelVersion ?? '',
    });
    call.end();
  })().catch((error) => {
    if (abort.signal.aborted) return;
    call.emit('error', { code: grpc.status.UNAVAILABLE, details: String(error?.message ?? error) });
  });
}

const server = new grpc.Server();
server.addService(vision.VisionService.service, { Caption: caption });
server.bindAsync(`127.0.0.1:${flags.port}`, grpc.ServerCredentials.createInsecure(),
  (error, port) => {
    if (error) {
      console.error(`node-peer: ${error.message}`);
      process.exit(1);
    }
    console.log(`node-peer listening on 127.0.0.1:${port}`);
  });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.tryShutdown(() => process.exit(0)));
}
