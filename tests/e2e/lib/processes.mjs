// Starts the binaries under test and waits for their "listening" lines; kills every child when
// the test process exits, however it exits.
import { spawn } from 'node:child_process';
import readline from 'node:readline';

const children = new Set();

function killAll() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killAll();
    process.exit(1);
  });
}

// Spawns `command args` and resolves with {child, match} once a line of `stream` ('stdout' or
// 'stderr') matches `pattern`. Rejects if the process exits first or after `timeoutMs`. Output is
// forwarded to our stderr with a prefix, for diagnosis.
export function startAndWait(command, args, { stream, pattern, env, timeoutMs = 15000, name }) {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const label = name ?? command.split('/').pop();
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`${label}: no line matching ${pattern} within ${timeoutMs} ms`));
    }, timeoutMs);
    for (const which of ['stdout', 'stderr']) {
      const lines = readline.createInterface({ input: child[which] });
      lines.on('line', (line) => {
        process.stderr.write(`[${label}] ${line}\n`);
        if (done || which !== stream) return;
        const match = line.match(pattern);
        if (match) {
          done = true;
          clearTimeout(timer);
          resolve({ child, match });
        }
      });
    }
    child.on('error', (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${label}: ${error.message}`));
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${label} exited (code ${code}, signal ${signal}) before listening`));
    });
  });
}

// gemini-emulator --port 0 --api_key KEY; resolves with {child, baseUrl}.
export async function startEmulator(binary, apiKey) {
  const { child, match } = await startAndWait(
      binary, ['--port', '0', '--api_key', apiKey],
      { stream: 'stdout', pattern: /gemini-emulator listening on (http:\/\/\S+:\d+)/ });
  return { child, baseUrl: match[1] };
}

// vision-server in front of `baseUrl`; resolves with {child, port}.
export async function startServer(binary, baseUrl, apiKey) {
  const { child, match } = await startAndWait(
      binary, ['--port', '0', '--metrics_port', '0', '--listen_host', '127.0.0.1', '--gemini_base_url', baseUrl],
      { stream: 'stderr', pattern: /vision-server listening on \S*?:(\d+)/,
        env: { GEMINI_API_KEY: apiKey } });
  return { child, port: Number(match[1]) };
}

export function stopAll() {
  killAll();
}

// Fails the test process if it has not finished after `ms`.
export function watchdog(ms) {
  const timer = setTimeout(() => {
    process.stderr.write(`test timed out after ${ms} ms\n`);
    killAll();
    process.exit(1);
  }, ms);
  timer.unref();
}
