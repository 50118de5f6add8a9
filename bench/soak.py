#!/usr/bin/python3
"""Soak load for vision-server (issue #8); run it through bench/soak.sh.

For --duration seconds, --concurrency client threads call Caption, Detect, Segment and CountTokens
(chosen at random) against a server in front of gemini-emulator (scene mode, --upstream-delay-ms
per answer). One call in ten has a short deadline and one stream in ten is cancelled after its
first message. Every --fault-every seconds one upstream fault is queued in the emulator's script
mode (429 with RetryInfo, 503, plain-text 500, resets before and after results, a stall, a bare
error object mid-stream, a garbage body, a blocked prompt); the next model request gets it,
whatever its kind. The server's RSS, threads and open fds are sampled every --sample-every
seconds. At the end: the samples, RSS start/peak/end, and the outcomes by RPC and gRPC code.

Exit status 1 when the server died or a call ended with a code that neither a fault nor the
client's own deadline or cancel explains (UNKNOWN, UNIMPLEMENTED, DATA_LOSS, ...).
Needs Debian's python3-grpcio (/usr/bin/python3), protoc and grpc_python_plugin.
"""
import argparse
import collections
import importlib
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RPCS = ('Caption', 'Detect', 'Segment', 'CountTokens')
# Codes the faults, the deadlines and the cancels explain: INVALID_ARGUMENT (blocked prompt),
# INTERNAL (a fault meant for a caption met a Detect: MODEL_OUTPUT_INVALID), the rest transient.
EXPLAINED = {'OK', 'CANCELLED', 'DEADLINE_EXCEEDED', 'UNAVAILABLE', 'RESOURCE_EXHAUSTED',
             'INVALID_ARGUMENT', 'INTERNAL'}


def png(width, height, seed):
    """A white PNG with one saturated rectangle (an object the emulator's scene mode finds)."""
    rnd = random.Random(seed)
    fill = rnd.choice([(220, 20, 20), (20, 40, 220), (20, 180, 40)])
    x0, y0 = width // 4, height // 4
    rows = []
    for y in range(height):
        row = bytearray(b'\x00')
        for x in range(width):
            inside = x0 <= x < 3 * x0 and y0 <= y < 3 * y0
            row += bytes(fill if inside else (255, 255, 255))
        rows.append(bytes(row))

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    return (b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(b''.join(rows))) + chunk(b'IEND', b''))


def generate_stubs(out_dir):
    subprocess.run(['protoc', '-I', os.path.join(REPO, 'proto'), '-I', '/usr/include',
                    '--python_out', out_dir, '--grpc_python_out', out_dir,
                    '--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin',
                    'vision/v1/vision.proto'], check=True, timeout=60)
    sys.path.insert(0, out_dir)
    return (importlib.import_module('vision.v1.vision_pb2'),
            importlib.import_module('vision.v1.vision_pb2_grpc'))


def sse(obj):
    return 'data: ' + json.dumps(obj) + '\r\n\r\n'


def text_event(text, finish=None):
    candidate = {'content': {'parts': [{'text': text}], 'role': 'model'}, 'index': 0}
    if finish:
        candidate['finishReason'] = finish
    return sse({'candidates': [candidate], 'modelVersion': 'soak'})


def error_body(code, status, message, details=None):
    error = {'code': code, 'message': message, 'status': status}
    if details:
        error['details'] = details
    return {'error': error}


FAULTS = [
    ('429_retry_info', {'status': 429, 'body': error_body(429, 'RESOURCE_EXHAUSTED', 'quota', [
        {'@type': 'type.googleapis.com/google.rpc.RetryInfo', 'retryDelay': '0.2s'}])}),
    ('503', {'status': 503, 'body': error_body(503, 'UNAVAILABLE', 'The model is overloaded.')}),
    ('500_plain_text', {'status': 500, 'headers': [['Content-Type', 'text/plain']],
                        'body': 'Internal error'}),
    ('reset_before_answer', {'drop_connection_after_writes': True}),
    ('reset_after_results', {'stream_writes': [text_event('partial ')],
                             'drop_connection_after_writes': True}),
    ('stall_4s', {'stream_writes': [text_event('late', 'STOP')], 'delay_before_headers_ms': 4000}),
    ('bare_error_mid_stream', {'stream_writes': [
        text_event('A '), json.dumps(error_body(500, 'INTERNAL', 'x')) + '\r\n']}),
    ('garbage_1mib', {'headers': [['Content-Type', 'text/event-stream']], 'body': 'g' * (1 << 20)}),
    ('blocked_prompt', {'stream_writes': [sse({'promptFeedback': {'blockReason': 'SAFETY'}})]}),
]


def proc_sample(pid):
    """(rss MiB, threads, open fds) of pid, or None when it is gone."""
    try:
        rss = threads = None
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    rss = int(line.split()[1]) / 1024.0
                elif line.startswith('Threads:'):
                    threads = int(line.split()[1])
        return rss, threads, len(os.listdir(f'/proc/{pid}/fd'))
    except OSError:
        return None


def post(url, obj):
    request = urllib.request.Request(url, data=json.dumps(obj).encode(), method='POST',
                                     headers={'Content-Type': 'application/json'})
    urllib.request.urlopen(request, timeout=5).read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--server', required=True, help='HOST:PORT of vision-server')
    ap.add_argument('--emulator', required=True, help='http://127.0.0.1:PORT')
    ap.add_argument('--server-pid', type=int, required=True)
    ap.add_argument('--duration', type=float, default=600)
    ap.add_argument('--concurrency', type=int, default=16)
    ap.add_argument('--fault-every', type=float, default=0.5, help='seconds between faults')
    ap.add_argument('--sample-every', type=float, default=30)
    ap.add_argument('--deadline', type=float, default=8, help='seconds, for most calls')
    ap.add_argument('--upstream-delay-ms', type=int, default=20)
    ap.add_argument('--seed', type=int, default=1)
    args = ap.parse_args()

    import grpc  # Debian python3-grpcio
    pb, pb_grpc = generate_stubs(tempfile.mkdtemp(prefix='vg-soak-stubs-'))
    post(args.emulator + '/emulator/config',
         {'response_delay_ms': args.upstream_delay_ms, 'stream_event_delay_ms': 2})
    channel = grpc.insecure_channel(args.server,
                                    options=[('grpc.max_send_message_length', 64 << 20)])
    grpc.channel_ready_future(channel).result(timeout=10)
    stub = pb_grpc.VisionServiceStub(channel)
    images = [png(w, h, s) for s, (w, h) in enumerate([(64, 48), (160, 120), (640, 480)])]

    outcomes = collections.Counter()
    lock = threading.Lock()
    samples = []
    start = time.time()
    stop = start + args.duration

    def call(rpc, image, timeout, cancel_after_first):
        if rpc == 'CountTokens':
            stub.CountTokens(pb.CountTokensRequest(images=[image]), timeout=timeout)
            return
        if rpc == 'Caption':
            stream = stub.Caption(pb.CaptionRequest(images=[image]), timeout=timeout)
        elif rpc == 'Detect':
            stream = stub.Detect(pb.DetectRequest(image=image), timeout=timeout)
        else:
            stream = stub.Segment(pb.SegmentRequest(image=image), timeout=timeout)
        for _ in stream:
            if cancel_after_first:
                stream.cancel()

    def worker(index):
        rnd = random.Random(args.seed * 1000 + index)
        while time.time() < stop:
            rpc = rnd.choice(RPCS)
            image = pb.Image(content=rnd.choice(images))
            short = rnd.random() < 0.1
            cancel = rpc != 'CountTokens' and rnd.random() < 0.1
            timeout = rnd.uniform(0.05, 0.5) if short else args.deadline
            try:
                call(rpc, image, timeout, cancel)
                code = 'OK'
            except grpc.RpcError as e:
                code = e.code().name
            with lock:
                outcomes[(rpc, code)] += 1

    def injector():
        rnd = random.Random(args.seed)
        while time.time() < stop:
            name, fault = rnd.choice(FAULTS)
            try:
                post(args.emulator + '/emulator/script', fault)
                key = ('fault', name)
            except Exception as e:  # reported; the soak goes on
                key = ('fault_injection_error', type(e).__name__)
            with lock:
                outcomes[key] += 1
            time.sleep(args.fault_every)

    def sampler():
        while True:
            now = time.time()
            sample = proc_sample(args.server_pid)
            samples.append((now - start, sample))
            if sample is None:
                print(f'  {now - start:6.0f} s  server gone', flush=True)
            else:
                with lock:
                    calls = sum(n for (rpc, _), n in outcomes.items() if rpc in RPCS)
                print(f'  {now - start:6.0f} s  RSS {sample[0]:7.1f} MiB  threads {sample[1]:3d}  '
                      f'fds {sample[2]:4d}  calls {calls}', flush=True)
            if now >= stop or sample is None:
                return
            time.sleep(min(args.sample_every, max(0.0, stop - now)))

    print(f'soak: {args.duration:.0f} s, concurrency {args.concurrency}, a fault every '
          f'{args.fault_every} s, upstream delay {args.upstream_delay_ms} ms, seed {args.seed}')
    print('server over time:', flush=True)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.concurrency)]
    threads += [threading.Thread(target=injector), threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - start
    final = proc_sample(args.server_pid)
    samples.append((elapsed, final))

    rss = [s[0] for _, s in samples if s is not None]
    if rss:
        print(f'RSS: start {rss[0]:.1f} MiB, peak {max(rss):.1f} MiB, end {rss[-1]:.1f} MiB')
    print('outcomes (rpc, code: count):')
    total = 0
    unexplained = 0
    codes = collections.Counter()
    for (rpc, code), n in sorted(outcomes.items()):
        print(f'  {rpc:22s} {code:22s} {n}')
        if rpc in RPCS:
            total += n
            codes[code] += n
            if code not in EXPLAINED:
                unexplained += n
    print('by code: ' + ', '.join(f'{code} {n}' for code, n in codes.most_common()))
    print(f'calls: {total} in {elapsed:.0f} s ({total / elapsed:.1f}/s)')
    alive = final is not None
    print(f'server alive at the end: {alive}')
    if unexplained:
        print(f'soak: FAIL: {unexplained} calls ended with a code no fault explains')
    return 0 if alive and not unexplained else 1


if __name__ == '__main__':
    sys.exit(main())
