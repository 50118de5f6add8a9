#!/usr/bin/python3
"""Debian's python3-grpcio (a gRPC client nobody here wrote) against vision-server in front of
gemini-emulator. Stubs are generated at test time with protoc + grpc_python_plugin.

    /usr/bin/python3 python_grpc_test.py <gemini-emulator> <vision-server>
"""
import importlib
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import unittest
import zlib

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
TIMEOUT_S = 15
CHILDREN = []


def make_png(width, height, background, fill, rect):
    """8-bit RGB PNG, filter 0 rows; `rect` = (x0, y0, x1, y1), exclusive ends, gets `fill`."""
    x0, y0, x1, y1 = rect
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes(fill if x0 <= x < x1 and y0 <= y < y1 else background)
        rows.append(bytes(row))

    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body))

    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
            chunk(b'IDAT', zlib.compress(b''.join(rows))) + chunk(b'IEND', b''))


def start_and_wait(args, stream_name, pattern, env=None):
    """Starts a child; returns (process, match) once a line of stream_name matches pattern."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, **(env or {})), text=True)
    CHILDREN.append(process)
    lines = queue.Queue()
    name = os.path.basename(args[0])

    def pump(stream, which):
        for line in stream:
            sys.stderr.write('[%s] %s' % (name, line))
            lines.put((which, line))
        lines.put((which, None))

    for stream, which in ((process.stdout, 'stdout'), (process.stderr, 'stderr')):
        threading.Thread(target=pump, args=(stream, which), daemon=True).start()
    closed = 0
    while True:
        try:
            which, line = lines.get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise RuntimeError('%s: no line matching %r within %ds' % (name, pattern, TIMEOUT_S))
        if line is None:
            closed += 1
            if closed == 2:
                raise RuntimeError('%s exited (%s) before listening' % (name, process.wait()))
            continue
        match = re.search(pattern, line) if which == stream_name else None
        if match:
            return process, match


def kill_children():
    for process in CHILDREN:
        if process.poll() is None:
            process.kill()
            process.wait()


def generate_stubs(out_dir):
    subprocess.run(
        ['protoc', '-I', os.path.join(REPO, 'proto'), '-I', '/usr/include',
         '--python_out', out_dir, '--grpc_python_out', out_dir,
         '--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin',
         'vision/v1/vision.proto'],
        check=True, timeout=60)
    sys.path.insert(0, out_dir)
    return (importlib.import_module('vision.v1.vision_pb2'),
            importlib.import_module('vision.v1.vision_pb2_grpc'))


class VisionServiceTest(unittest.TestCase):
    emulator_binary = None
    server_binary = None

    @classmethod
    def setUpClass(cls):
        import grpc  # Debian python3-grpcio
        cls.grpc = grpc
        cls.stub_dir = tempfile.mkdtemp(prefix='vg-py-stubs-')
        cls.pb2, pb2_grpc = generate_stubs(cls.stub_dir)
        _, match = start_and_wait([cls.emulator_binary, '--port', '0', '--api_key', 'test-key'],
                                  'stdout', r'gemini-emulator listening on (http://\S+:\d+)')
        base_url = match.group(1)
        _, match = start_and_wait(
            [cls.server_binary, '--port', '0', '--metrics_port', '0', '--listen_host', '127.0.0.1',
             '--gemini_base_url', base_url],
            'stderr', r'vision-server listening on \S*?:(\d+)', env={'GEMINI_API_KEY': 'test-key'})
        cls.channel = grpc.insecure_channel('127.0.0.1:%s' % match.group(1))
        cls.stub = pb2_grpc.VisionServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, 'channel', None) is not None:
            cls.channel.close()
        kill_children()
        shutil.rmtree(cls.stub_dir, ignore_errors=True)

    def png(self):
        return make_png(320, 240, (255, 255, 255), (220, 20, 20), (80, 60, 240, 180))

    def test_caption_streams_colour_and_size(self):
        request = self.pb2.CaptionRequest(images=[self.pb2.Image(content=self.png())],
                                          prompt='Describe the image.')
        messages = list(self.stub.Caption(request, timeout=20))
        self.assertGreaterEqual(len(messages), 2, 'expected a stream of pieces')
        text = ''.join(m.text for m in messages)
        self.assertRegex(text, r'(?i)\bred\b')
        self.assertIn('320x240', text)
        self.assertEqual(messages[-1].finish_reason, 'STOP')
        self.assertGreater(messages[-1].usage.total_tokens, 258)
        for message in messages[:-1]:
            self.assertEqual(message.finish_reason, '')

    def test_caption_without_images_is_invalid_argument(self):
        request = self.pb2.CaptionRequest(prompt='Describe.')
        with self.assertRaises(self.grpc.RpcError) as raised:
            list(self.stub.Caption(request, timeout=20))
        self.assertEqual(raised.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT,
                         raised.exception.details())

    def test_count_tokens(self):
        reply = self.stub.CountTokens(
            self.pb2.CountTokensRequest(images=[self.pb2.Image(content=self.png())]), timeout=20)
        self.assertGreater(reply.total_tokens, 258)
        self.assertEqual(reply.estimated_image_tokens, 258)

    def upload(self, data, **header):
        """Client-streaming Upload: the header, then the bytes in 100 KiB pieces."""
        def messages():
            yield self.pb2.UploadRequest(
                header=self.pb2.UploadHeader(size_bytes=len(data), **header))
            for at in range(0, len(data), 100 * 1024):
                yield self.pb2.UploadRequest(chunk=data[at:at + 100 * 1024])
        return self.stub.Upload(messages(), timeout=20)

    def test_upload_then_segment_and_files_rpcs(self):
        import hashlib
        data = self.png()
        sha256 = hashlib.sha256(data).hexdigest()
        uploaded = self.upload(data, display_name='python upload', sha256=sha256)
        self.assertTrue(uploaded.name.startswith('files/g1-'), uploaded.name)
        self.assertEqual(uploaded.sha256, sha256)
        self.assertEqual((uploaded.width, uploaded.height), (320, 240))
        self.assertEqual(uploaded.state, self.pb2.File.STATE_ACTIVE)

        messages = list(self.stub.Segment(
            self.pb2.SegmentRequest(image=self.pb2.Image(file=uploaded.name)), timeout=20))
        self.assertEqual(messages[0].image_info.width, 320)
        masks = [m.mask for m in messages if m.HasField('mask')]
        self.assertTrue(masks, 'no mask')
        self.assertEqual(list(masks[0].rle.size), [240, 320])
        self.assertGreater(masks[0].area, 0)

        got = self.stub.GetFile(self.pb2.GetFileRequest(name=uploaded.name), timeout=20)
        self.assertEqual(got.sha256, sha256)
        page = self.stub.ListFiles(self.pb2.ListFilesRequest(page_size=5), timeout=20)
        self.assertIn(uploaded.name, [f.name for f in page.files])
        self.stub.DeleteFile(self.pb2.DeleteFileRequest(name=uploaded.name), timeout=20)
        with self.assertRaises(self.grpc.RpcError) as raised:
            self.stub.GetFile(self.pb2.GetFileRequest(name=uploaded.name), timeout=20)
        self.assertEqual(raised.exception.code(), self.grpc.StatusCode.NOT_FOUND)
        self.assertIn('48 hours', raised.exception.details())

    def test_upload_with_a_wrong_size_is_invalid_argument(self):
        data = self.png()
        def messages():
            yield self.pb2.UploadRequest(header=self.pb2.UploadHeader(size_bytes=len(data) + 1))
            yield self.pb2.UploadRequest(chunk=data)
        with self.assertRaises(self.grpc.RpcError) as raised:
            self.stub.Upload(messages(), timeout=20)
        self.assertEqual(raised.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT)


def main():
    if len(sys.argv) < 3:
        sys.stderr.write('usage: python_grpc_test.py <gemini-emulator> <vision-server>\n')
        return 2
    VisionServiceTest.emulator_binary, VisionServiceTest.server_binary = sys.argv[1:3]
    try:
        import grpc  # noqa: F401  (Debian python3-grpcio)
    except ImportError:
        sys.stderr.write('SKIP: python3-grpcio is not installed (scripts/install-deps.sh)\n')
        return 77
    for tool in ('protoc', '/usr/bin/grpc_python_plugin'):
        if shutil.which(tool) is None:
            sys.stderr.write('SKIP: %s missing (protobuf-compiler-grpc)\n' % tool)
            return 77
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (kill_children(), sys.exit(1)))
    # A watchdog: whatever hangs, the children die and the test fails.
    watchdog = threading.Timer(90, lambda: (sys.stderr.write('test timed out\n'),
                                            kill_children(), os._exit(1)))
    watchdog.daemon = True
    watchdog.start()
    try:
        result = unittest.main(argv=[sys.argv[0], '-v'], exit=False).result
    finally:
        kill_children()
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
