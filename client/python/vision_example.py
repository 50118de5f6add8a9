#!/usr/bin/python3
"""A small vision-gateway client with typed stubs (grpcio): caption, detect, upload.

Generate the stubs first (see README.md), then:

    PYTHONPATH=gen ./vision_example.py --target HOST:PORT --ca_file ca.pem \
        --token_file token photo.png

It captions the image (printing the text as it streams in), detects objects (boxes in pixels),
uploads the image in chunks, and deletes the uploaded file again. Every call carries the bearer
token; a RESOURCE_EXHAUSTED with a RetryInfo is retried after the delay the server asks for.
"""
import argparse
import hashlib
import os
import sys
import time

import grpc

from google.rpc import error_details_pb2, status_pb2
from vision.v1 import vision_pb2, vision_pb2_grpc

# google.rpc details the gateway sends, by their type, and how to print each.
DETAIL_TYPES = {
    'ErrorInfo': error_details_pb2.ErrorInfo,
    'RetryInfo': error_details_pb2.RetryInfo,
    'QuotaFailure': error_details_pb2.QuotaFailure,
    'BadRequest': error_details_pb2.BadRequest,
    'Help': error_details_pb2.Help,
    'LocalizedMessage': error_details_pb2.LocalizedMessage,
}


class CallError(Exception):
    """A failed RPC with its google.rpc details decoded."""

    def __init__(self, error):
        super().__init__(error.details())
        self.code = error.code()
        self.message = error.details()
        self.details = []  # decoded detail messages, in order
        self.request_id = dict(error.initial_metadata() or ()).get('x-request-id', '')
        for key, value in error.trailing_metadata() or ():
            if key == 'grpc-status-details-bin':
                status = status_pb2.Status.FromString(value)
                for any_detail in status.details:
                    for message_type in DETAIL_TYPES.values():
                        if any_detail.Is(message_type.DESCRIPTOR):
                            detail = message_type()
                            any_detail.Unpack(detail)
                            self.details.append(detail)

    def detail(self, message_type):
        return next((d for d in self.details if isinstance(d, message_type)), None)

    def retry_delay(self):
        """Seconds the server asks us to wait before retrying, or None."""
        info = self.detail(error_details_pb2.RetryInfo)
        return info.retry_delay.ToTimedelta().total_seconds() if info else None

    def describe(self):
        lines = ['%s: %s' % (self.code.name, self.message)]
        info = self.detail(error_details_pb2.ErrorInfo)
        if info:
            lines.append('  ErrorInfo reason %s (domain %s)' % (info.reason, info.domain))
        if self.retry_delay() is not None:
            lines.append('  RetryInfo retry_delay %gs' % self.retry_delay())
        for violation in getattr(self.detail(error_details_pb2.QuotaFailure), 'violations', []):
            lines.append('  QuotaFailure %s' % violation.subject)
        for violation in getattr(self.detail(error_details_pb2.BadRequest),
                                 'field_violations', []):
            lines.append('  BadRequest %s: %s' % (violation.field, violation.description))
        if self.request_id:
            lines.append('  request id %s' % self.request_id)
        return '\n'.join(lines)


def with_retries(what, max_attempts, call, started=lambda: False):
    """Runs call(); on RESOURCE_EXHAUSTED with a RetryInfo, waits that long and tries again.

    A call that already printed results (started() is true) is not retried: it would print
    them twice.
    """
    for attempt in range(1, max_attempts + 1):
        try:
            return call()
        except grpc.RpcError as error:
            failure = CallError(error)
            print('%s failed: %s' % (what, failure.describe()), file=sys.stderr, flush=True)
            delay = failure.retry_delay()
            if (failure.code != grpc.StatusCode.RESOURCE_EXHAUSTED or delay is None or
                    attempt == max_attempts or started()):
                raise failure from None
            print('retrying %s in %gs (attempt %d of %d)' % (what, delay, attempt + 1,
                                                            max_attempts), flush=True)
            time.sleep(delay)


def caption(stub, image, metadata, max_attempts):
    """Prints the caption piece by piece as the server streams it."""
    pieces = 0

    def call():
        nonlocal pieces
        last = None
        for response in stub.Caption(
                vision_pb2.CaptionRequest(images=[vision_pb2.Image(content=image)]),
                metadata=metadata, timeout=60):
            print(response.text, end='', flush=True)
            pieces, last = pieces + 1, response
        print()
        print('(caption: %d pieces, finish_reason %s, %d tokens)' % (
            pieces, last.finish_reason, last.usage.total_tokens), flush=True)

    with_retries('caption', max_attempts, call, started=lambda: pieces > 0)


def detect(stub, image, metadata, max_attempts):
    """Prints each detected object's box in pixels of the upright image."""
    received = 0

    def call():
        nonlocal received
        for response in stub.Detect(vision_pb2.DetectRequest(image=vision_pb2.Image(content=image)),
                                    metadata=metadata, timeout=60):
            received += 1
            kind = response.WhichOneof('event')
            if kind == 'image_info':
                info = response.image_info
                print('image: %dx%d %s' % (info.width, info.height, info.mime_type))
            elif kind == 'detection':
                d = response.detection
                print('object %d %s: x %d-%d, y %d-%d px' % (
                    d.index, d.label, d.box.x_min, d.box.x_max, d.box.y_min, d.box.y_max))
            elif kind == 'summary':
                print('summary: %d objects, finish_reason %s' % (
                    response.summary.count, response.summary.finish_reason))
            sys.stdout.flush()

    with_retries('detect', max_attempts, call, started=lambda: received > 0)


def upload(stub, path, chunk_size, metadata, max_attempts):
    """Uploads the file as a header then chunks, read from disk as they are sent."""
    size = os.path.getsize(path)
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    chunks = 0

    def requests():
        nonlocal chunks
        yield vision_pb2.UploadRequest(header=vision_pb2.UploadHeader(
            display_name=os.path.basename(path), size_bytes=size, sha256=digest.hexdigest()))
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(chunk_size), b''):
                chunks += 1
                yield vision_pb2.UploadRequest(chunk=chunk)

    def call():
        nonlocal chunks
        chunks = 0
        uploaded = stub.Upload(requests(), metadata=metadata, timeout=600)
        print('uploaded %s (%d bytes in %d chunks, %dx%d px, sha256 %s, %s)' % (
            uploaded.name, uploaded.size_bytes, chunks, uploaded.width, uploaded.height,
            uploaded.sha256, vision_pb2.File.State.Name(uploaded.state)), flush=True)
        return uploaded

    return with_retries('upload', max_attempts, call)


def channel_for(args):
    if args.plaintext:
        return grpc.insecure_channel(args.target)
    root_certificates = None
    if args.ca_file:
        with open(args.ca_file, 'rb') as f:
            root_certificates = f.read()
    credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
    token = os.environ.get('VISION_TOKEN', '')
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
    if token:
        # Sends "authorization: Bearer <token>" on every call (only over TLS).
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token))
    return grpc.secure_channel(args.target, credentials)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('image', help='a PNG, JPEG, WEBP or HEIC file')
    parser.add_argument('--target', default='localhost:50051', help='host:port of the gateway')
    parser.add_argument('--ca_file', help='PEM CA bundle to verify the server (default: system roots)')
    parser.add_argument('--token_file', help='file holding the bearer token (else $VISION_TOKEN)')
    parser.add_argument('--plaintext', action='store_true', help='no TLS (local gateway)')
    parser.add_argument('--chunk_size', type=int, default=1 << 20, help='upload chunk size, bytes')
    parser.add_argument('--max_attempts', type=int, default=3, help='attempts per call')
    args = parser.parse_args()
    with open(args.image, 'rb') as f:
        image = f.read()
    metadata = None  # per-call metadata, e.g. [('x-request-id', 'my-id')]
    with channel_for(args) as channel:
        stub = vision_pb2_grpc.VisionServiceStub(channel)
        try:
            print('== caption', flush=True)
            caption(stub, image, metadata, args.max_attempts)
            print('== detect', flush=True)
            detect(stub, image, metadata, args.max_attempts)
            print('== upload', flush=True)
            uploaded = upload(stub, args.image, args.chunk_size, metadata, args.max_attempts)
            with_retries('delete', args.max_attempts, lambda: stub.DeleteFile(
                vision_pb2.DeleteFileRequest(name=uploaded.name), metadata=metadata, timeout=30))
            print('deleted %s' % uploaded.name, flush=True)
        except CallError as failure:  # already described by with_retries
            print('error: %s' % failure.code.name, file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
