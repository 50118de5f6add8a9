// One Caption over TLS with @grpc/grpc-js (a client nobody here wrote); prints "ok <text>" or
// "error <code> <details>" and exits 0 when the outcome matches the expectation.
//   node tls_client.mjs PORT CA.pem PNG EXPECT [TOKEN]     (EXPECT: ok or a status name)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const [port, caFile, pngFile, expect, token] = process.argv.slice(2);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const definition = protoLoader.loadSync('vision/v1/vision.proto', {
  includeDirs: [path.join(repo, 'proto'), '/usr/include'],
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const vision = grpc.loadPackageDefinition(definition).vision.v1;
const client = new vision.VisionService(`localhost:${port}`,
  grpc.credentials.createSsl(fs.readFileSync(caFile)));
const metadata = new grpc.Metadata();
if (token) metadata.set('authorization', `Bearer ${token}`);
const call = client.Caption({ images: [{ content: fs.readFileSync(pngFile) }] }, metadata,
  { deadline: new Date(Date.now() + 15000) });
let text = '';
call.on('data', (m) => { text += m.text; });
call.on('error', (error) => {
  const name = Object.keys(grpc.status).find((k) => grpc.status[k] === error.code);
  console.log('error', name, error.details);
  client.close();
  process.exit(name === expect ? 0 : 1);
});
call.on('end', () => {
  console.log('ok', text);
  client.close();
  process.exit(expect === 'ok' ? 0 : 1);
});
