#!/usr/bin/python3
"""Peak RSS of vision-server under many large requests at once (issue #17, README "Memory").

Starts gemini-emulator (with --delay_ms: a slow upstream) and vision-server with caller tokens,
sends --calls Caption requests of --image-mib MiB each at once on one connection, either with a
wrong token (--mode unauth: all must be refused UNAUTHENTICATED) or a valid one (--mode auth),
and reports the server's peak RSS (VmHWM) and the status codes. Extra arguments after -- go to
vision-server (e.g. the limits, or --max_request_memory_mb=0 --grpc_memory_mb=0
--max_concurrent_streams=0 for the unbounded behaviour of before).

  bench/memory_pressure.py build/service/vision-server build/emulator/gemini-emulator \\
      --mode unauth --calls 32 --image-mib 40
"""
import argparse
import collections
import importlib
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def noise_png(mib):
    """A valid RGB PNG of about `mib` MiB (stored, not compressed: noise would not shrink)."""
    side = int(((mib << 20) / 3) ** 0.5)
    raw = b''.join(b'\x00' + os.urandom(side * 3) for _ in range(side))

    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body))

    ihdr = struct.pack('>IIBBBBB', side, side, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw, 0)) +
            chunk(b'IEND', b''))


def start(args, stream, pattern, env=None):
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, **(env or {})))
    source = process.stdout if stream == 'stdout' else process.stderr
    deadline = time.time() + 30
    while time.time() < deadline:
        line = source.readline()
        if not line:
            break
        match = re.search(pattern, line)
        if match:
            threading.Thread(target=lambda: [None for _ in source], daemon=True).start()
            return process, match
    process.kill()
    raise RuntimeError('%s did not start' % args[0])


def rss_kib(pid, field):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('server')
    parser.add_argument('emulator')
    parser.add_argument('--mode', choices=['unauth', 'auth'], default='unauth')
    parser.add_argument('--calls', type=int, default=32)
    parser.add_argument('--image-mib', type=int, default=40)
    parser.add_argument('--delay-ms', type=int, default=3000)
    parser.add_argument('--tls', action='store_true',
                        help='serve TLS (a throw-away self-signed certificate): the server then '
                             'refuses unauthenticated calls in its auth processor')
    argv = sys.argv[1:]
    extra = argv[argv.index('--') + 1:] if '--' in argv else []
    args = parser.parse_args(argv[:argv.index('--')] if '--' in argv else argv)
    args.server_args = extra

    import grpc  # Debian python3-grpcio
    stubs = tempfile.mkdtemp(prefix='vg-mem-')
    subprocess.run(['protoc', '-I', os.path.join(REPO, 'proto'), '-I', '/usr/include',
                    '--python_out', stubs, '--grpc_python_out', stubs,
                    '--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin',
                    'vision/v1/vision.proto'], check=True)
    sys.path.insert(0, stubs)
    pb2 = importlib.import_module('vision.v1.vision_pb2')
    pb2_grpc = importlib.import_module('vision.v1.vision_pb2_grpc')

    tokens = os.path.join(stubs, 'tokens')
    with open(tokens, 'w') as f:
        f.write('alice good-token-0123456789\n')
    tls_args = []
    if args.tls:
        cert, key = os.path.join(stubs, 'tls.crt'), os.path.join(stubs, 'tls.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                        '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
                        '-keyout', key, '-out', cert], check=True, capture_output=True)
        tls_args = ['--tls_cert_file', cert, '--tls_key_file', key]
    emulator, match = start([args.emulator, '--port', '0', '--api_key', 'k',
                             '--delay_ms', str(args.delay_ms)], 'stdout',
                            r'listening on (http://\S+:\d+)')
    server, match2 = start([args.server, '--port', '0', '--listen_host', '127.0.0.1',
                            '--metrics_port', '-1', '--gemini_base_url', match.group(1),
                            '--auth_tokens_file', tokens] + tls_args + args.server_args,
                           'stderr', r'listening on \S*?:(\d+)', env={'GEMINI_API_KEY': 'k'})
    try:
        image = noise_png(args.image_mib)
        request = pb2.CaptionRequest(images=[pb2.Image(content=image)])
        token = 'good-token-0123456789' if args.mode == 'auth' else 'wrong-token-0000000000'
        options = [('grpc.max_send_message_length', -1), ('grpc.max_receive_message_length', -1)]
        if args.tls:
            with open(cert, 'rb') as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            channel = grpc.secure_channel('localhost:' + match2.group(1), credentials,
                                          options=options)
        else:
            channel = grpc.insecure_channel('127.0.0.1:' + match2.group(1), options=options)
        stub = pb2_grpc.VisionServiceStub(channel)
        grpc.channel_ready_future(channel).result(timeout=10)
        time.sleep(0.5)
        base = rss_kib(server.pid, 'VmRSS')
        codes = collections.Counter()
        lock = threading.Lock()

        def call():
            try:
                for _ in stub.Caption(request, timeout=120,
                                      metadata=[('authorization', 'Bearer ' + token)]):
                    pass
                code = 'OK'
            except grpc.RpcError as e:
                code = e.code().name
            with lock:
                codes[code] += 1

        threads = [threading.Thread(target=call) for _ in range(args.calls)]
        start_time = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - start_time
        peak = rss_kib(server.pid, 'VmHWM')
        print('mode=%s%s calls=%d image=%.1f MiB delay=%d ms server_args=%s' %
              (args.mode, ' tls' if args.tls else '', args.calls, len(image) / 2**20,
               args.delay_ms, ' '.join(args.server_args)))
        print('  codes: %s; %.1f s' % (dict(codes), elapsed))
        print('  server RSS: %.0f MiB before, peak %.0f MiB' % (base / 1024, peak / 1024))
        channel.close()
    finally:
        server.kill()
        emulator.kill()


if __name__ == '__main__':
    main()
