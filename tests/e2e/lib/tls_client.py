#!/usr/bin/python3
"""One Caption over TLS with Debian's python3-grpcio (a client nobody here wrote); prints the
outcome as "ok <text>" or "error <CODE> <details>" and exits 0 when it matches --expect.

    tls_client.py --port P --ca CA.pem [--cert C.pem --key K.pem] [--token T] \
                  --expect ok|UNAUTHENTICATED|UNAVAILABLE|... --png FILE --stubs DIR
"""
import argparse
import importlib
import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))


def stubs(out_dir):
    if not os.path.exists(os.path.join(out_dir, 'vision', 'v1', 'vision_pb2.py')):
        subprocess.run(
            ['protoc', '-I', os.path.join(REPO, 'proto'), '-I', '/usr/include',
             '--python_out', out_dir, '--grpc_python_out', out_dir,
             '--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin',
             'vision/v1/vision.proto'], check=True, timeout=60)
    sys.path.insert(0, out_dir)
    return (importlib.import_module('vision.v1.vision_pb2'),
            importlib.import_module('vision.v1.vision_pb2_grpc'))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', required=True)
    parser.add_argument('--host', default='localhost')
    parser.add_argument('--ca', required=True)
    parser.add_argument('--cert')
    parser.add_argument('--key')
    parser.add_argument('--token')
    parser.add_argument('--expect', required=True)
    parser.add_argument('--png', required=True)
    parser.add_argument('--stubs', required=True)
    args = parser.parse_args()
    import grpc
    pb2, pb2_grpc = stubs(args.stubs)

    def read(path):
        with open(path, 'rb') as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key) if args.key else None,
        certificate_chain=read(args.cert) if args.cert else None)
    metadata = [('authorization', 'Bearer ' + args.token)] if args.token else None
    with grpc.secure_channel('%s:%s' % (args.host, args.port), credentials) as channel:
        stub = pb2_grpc.VisionServiceStub(channel)
        request = pb2.CaptionRequest(images=[pb2.Image(content=read(args.png))])
        try:
            text = ''.join(m.text for m in stub.Caption(request, timeout=15, metadata=metadata))
            outcome = 'ok'
            print('ok', text)
        except grpc.RpcError as error:
            outcome = error.code().name
            print('error', outcome, error.details())
    return 0 if outcome == args.expect else 1


if __name__ == '__main__':
    sys.exit(main())
