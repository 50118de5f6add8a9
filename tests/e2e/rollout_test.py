#!/usr/bin/python3
"""Rollouts that lose no call, load spreading over long-lived HTTP/2 connections, and key
rotation, with the real vision-server binaries and Debian's python3-grpcio as the client.

    /usr/bin/python3 rollout_test.py <gemini-emulator> <vision-server>

Each gateway talks to its own emulator, so the emulators' request counts say which gateway served
a call.
- Drain: two gateways behind one client channel with round_robin over both addresses (and client
  health checking, as the README recommends), steady load from several threads; SIGTERM one. No
  call fails; the terminated gateway exits 0 within drain delay + grace. Without client health
  checking (like connections through a ClusterIP Service), the terminated gateway still serves
  new calls during --drain_delay_s, none failing.
- Connection age: a pick_first client reaches two gateways through a TCP balancer that, like a
  Kubernetes ClusterIP Service, picks a backend per connection. With --max_connection_age_s the
  client's calls spread over both gateways with no failed call; without it they all stay on one.
- Key rotation: the key file is laid out like a Kubernetes Secret volume and updated by an atomic
  ..data symlink swap; the old key is then revoked at the emulator. A stream in flight completes,
  new calls use the new key, the key never appears in the gateway's log.
"""
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from python_grpc_test import generate_stubs, make_png  # noqa: E402  (shared e2e helpers)

WAIT_S = 20
CALL_TIMEOUT_S = 15
CHILDREN = []


class Child:
    """A child process whose output lines are kept, so a test can wait for a log line."""

    def __init__(self, args, env=None):
        self.name = os.path.basename(args[0])
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env=dict(os.environ, **(env or {})), text=True)
        CHILDREN.append(self)
        self.lines = []
        self.cond = threading.Condition()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self):
        for line in self.process.stdout:
            sys.stderr.write('[%s %d] %s' % (self.name, self.process.pid, line))
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        self.process.stdout.close()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def wait_line(self, pattern, timeout=WAIT_S):
        """The match of the first output line matching pattern (from the start of the log)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                while seen < len(self.lines):
                    line = self.lines[seen]
                    seen += 1
                    if line is None:
                        raise RuntimeError('%s exited (%s) before printing %r' %
                                           (self.name, self.process.wait(), pattern))
                    match = re.search(pattern, line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError('%s: no line %r within %ds' % (self.name, pattern, timeout))
                self.cond.wait(remaining)

    def log(self):
        with self.cond:
            return ''.join(line for line in self.lines if line is not None)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.pump.join(10)


def kill_children():
    for child in CHILDREN:
        child.stop()
    CHILDREN.clear()


class Emulator:
    def __init__(self, binary, *args):
        self.child = Child([binary, '--port', '0'] + list(args))
        self.url = self.child.wait_line(r'gemini-emulator listening on (http://\S+:\d+)').group(1)

    def admin(self, method, what, body=None):
        data = body.encode() if isinstance(body, str) else (
            json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + '/emulator/' + what, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read() or b'null')

    def requests_seen(self):
        return self.admin('GET', 'status')['recorded_requests']


class Gateway:
    def __init__(self, binary, emulator_url, *args, env=None):
        self.child = Child([binary, '--port', '0', '--metrics_port', '0', '--listen_host', '127.0.0.1',
                            '--gemini_base_url', emulator_url] + list(args),
                           env=env if env is not None else {'GEMINI_API_KEY': 'k'})
        self.port = int(self.child.wait_line(r'vision-server listening on \S*?:(\d+)').group(1))
        self.address = '127.0.0.1:%d' % self.port


class Balancer:
    """A TCP balancer choosing a backend per connection (round robin), as a ClusterIP Service
    does per connection: every byte of a connection goes to the backend chosen at accept."""

    def __init__(self, backends):
        self.backends = backends
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.port = self.listener.getsockname()[1]
        self.connections = [0] * len(backends)
        self.sockets = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                index = sum(self.connections) % len(self.backends)
                self.connections[index] += 1
            try:
                upstream = socket.create_connection(self.backends[index], timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.close()
                except OSError:
                    pass


class Load:
    """`threads` callers each making Caption calls back to back until stop()."""

    def __init__(self, stub, request, threads):
        self.stub, self.request = stub, request
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                messages = list(self.stub.Caption(self.request, timeout=CALL_TIMEOUT_S))
                if not messages or messages[-1].finish_reason != 'STOP':
                    raise RuntimeError('stream without finish_reason STOP: %r' % messages[-1:])
                with self.lock:
                    self.ok += 1
            except Exception as error:  # pylint: disable=broad-except
                detail = ('%s: %s' % (error.code(), error.details())
                          if hasattr(error, 'code') else repr(error))
                with self.lock:
                    self.failures.append(detail)

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(CALL_TIMEOUT_S + 5)


def wait_until(condition, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for ' + what)
        time.sleep(0.02)


class RolloutTest(unittest.TestCase):
    emulator_binary = None
    server_binary = None

    @classmethod
    def setUpClass(cls):
        import grpc  # Debian python3-grpcio
        cls.grpc = grpc
        cls.stub_dir = tempfile.mkdtemp(prefix='vg-rollout-stubs-')
        cls.pb2, cls.pb2_grpc = generate_stubs(cls.stub_dir)
        png = make_png(320, 240, (255, 255, 255), (220, 20, 20), (80, 60, 240, 180))
        cls.request = cls.pb2.CaptionRequest(images=[cls.pb2.Image(content=png)])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.stub_dir, ignore_errors=True)

    def tearDown(self):
        kill_children()

    def start_pair(self, *gateway_args):
        # Each Caption streams for ~0.2 s (4 events 50 ms apart), so calls are in flight.
        emulators = [Emulator(self.emulator_binary, '--stream_event_delay_ms', '50')
                     for _ in range(2)]
        gateways = [Gateway(self.server_binary, e.url, *gateway_args) for e in emulators]
        return emulators, gateways

    def round_robin_channel(self, gateways, health_check):
        config = {'loadBalancingConfig': [{'round_robin': {}}]}
        if health_check:  # as README "Deploy on Kubernetes" recommends
            config['healthCheckConfig'] = {'serviceName': 'vision.v1.VisionService'}
        return self.grpc.insecure_channel(
            'ipv4:%s,%s' % (gateways[0].address, gateways[1].address),
            options=[('grpc.service_config', json.dumps(config))])

    def test_sigterm_under_round_robin_load_loses_no_call(self):
        """round_robin + client health checking: the client leaves the gateway as soon as it
        turns NOT_SERVING, all calls succeed, the gateway exits 0 within drain delay + grace."""
        drain_delay_s, grace_s = 2, 10
        emulators, gateways = self.start_pair('--drain_delay_s', str(drain_delay_s),
                                              '--shutdown_grace_s', str(grace_s))
        channel = self.round_robin_channel(gateways, health_check=True)
        stub = self.pb2_grpc.VisionServiceStub(channel)
        load = Load(stub, self.request, threads=4)
        try:
            wait_until(lambda: min(e.requests_seen() for e in emulators) >= 5,
                       'both gateways to serve calls')
            before = emulators[0].requests_seen()
            started = time.monotonic()
            gateways[0].child.process.send_signal(signal.SIGTERM)
            bound = drain_delay_s + grace_s
            code = gateways[0].child.process.wait(timeout=bound + 5)
            took = time.monotonic() - started
            served_after_signal = emulators[0].requests_seen() - before
            after_exit = emulators[1].requests_seen()
            wait_until(lambda: emulators[1].requests_seen() >= after_exit + 10,
                       'the remaining gateway to take the load')
        finally:
            load.stop()
            channel.close()
        print('drain (health-checking client): %d calls ok, %d failed; terminated gateway exited '
              '%s after %.2f s; it got %d upstream requests after SIGTERM' %
              (load.ok, len(load.failures), code, took, served_after_signal))
        self.assertEqual(load.failures, [], 'calls failed during the rollout')
        self.assertEqual(code, 0)
        self.assertGreaterEqual(took, drain_delay_s, 'exited before the drain delay')
        self.assertLess(took, bound, 'exited after drain delay + grace')
        gateways[0].child.wait_line(r'health NOT_SERVING; still serving new calls')

    def test_drain_delay_serves_clients_that_ignore_health(self):
        """round_robin without health checking (like a connection through a ClusterIP Service):
        the terminated gateway keeps serving new calls during --drain_delay_s, none fails."""
        drain_delay_s, grace_s = 5, 10
        emulators, gateways = self.start_pair('--drain_delay_s', str(drain_delay_s),
                                              '--shutdown_grace_s', str(grace_s))
        channel = self.round_robin_channel(gateways, health_check=False)
        stub = self.pb2_grpc.VisionServiceStub(channel)
        load = Load(stub, self.request, threads=4)
        try:
            wait_until(lambda: min(e.requests_seen() for e in emulators) >= 5,
                       'both gateways to serve calls')
            before = emulators[0].requests_seen()
            started = time.monotonic()
            gateways[0].child.process.send_signal(signal.SIGTERM)
            # At most 4 calls (one per thread) were in flight at the signal: more are new calls.
            wait_until(lambda: emulators[0].requests_seen() > before + 8,
                       'new calls served during the drain delay', drain_delay_s)
        finally:
            load.stop()
            channel.close()
        stopped = time.monotonic() - started
        served_after_signal = emulators[0].requests_seen() - before
        code = gateways[0].child.process.wait(timeout=drain_delay_s + grace_s + 5)
        took = time.monotonic() - started
        print('drain delay (client ignoring health): %d calls ok, %d failed; %d upstream requests '
              'on the terminated gateway in the %.2f s after SIGTERM; it exited %s after %.2f s' %
              (load.ok, len(load.failures), served_after_signal, stopped, code, took))
        self.assertEqual(load.failures, [])
        self.assertLess(stopped, drain_delay_s, 'the load outlived the drain delay')
        self.assertEqual(code, 0)
        self.assertLess(took, drain_delay_s + grace_s)

    def spread(self, gateway_args, calls):
        """Calls through a per-connection balancer; returns the emulators' request counts."""
        emulators = [Emulator(self.emulator_binary) for _ in range(2)]
        gateways = [Gateway(self.server_binary, e.url, *gateway_args) for e in emulators]
        balancer = Balancer([('127.0.0.1', g.port) for g in gateways])
        # Each gateway read its emulator's models list at start (model discovery): not a call.
        at_start = [e.requests_seen() for e in emulators]
        channel = self.grpc.insecure_channel('127.0.0.1:%d' % balancer.port)  # pick_first
        stub = self.pb2_grpc.VisionServiceStub(channel)
        load = Load(stub, self.request, threads=1)
        try:
            wait_until(lambda: load.ok + len(load.failures) >= calls, '%d calls' % calls, 60)
        finally:
            load.stop()
            channel.close()
            balancer.close()
        return (load, [e.requests_seen() - n for e, n in zip(emulators, at_start)],
                balancer.connections)

    def test_max_connection_age_spreads_a_long_lived_client(self):
        load, counts, connections = self.spread(
            ['--max_connection_age_s', '1', '--max_connection_age_grace_s', '10'], 150)
        print('max_connection_age 1 s: calls per gateway %s, connections %s, %d failed' %
              (counts, connections, len(load.failures)))
        self.assertEqual(load.failures, [])
        self.assertGreater(min(counts), 0, 'one gateway got no call')

        kill_children()
        load, counts, connections = self.spread([], 60)
        print('no max connection age: calls per gateway %s, connections %s' %
              (counts, connections))
        self.assertEqual(load.failures, [])
        self.assertEqual(min(counts), 0, 'without max age, one connection should carry it all')

    def test_key_file_rotation_without_restart(self):
        old_key, new_key = 'AIzaSy-e2e-old-DO-NOT-LEAK-0000', 'AIzaSy-e2e-new-DO-NOT-LEAK-1111'
        secret = tempfile.mkdtemp(prefix='vg-secret-')
        try:
            def publish(version, key):  # as the kubelet updates a Secret volume
                os.mkdir(os.path.join(secret, version))
                with open(os.path.join(secret, version, 'gemini-api-key'), 'w') as f:
                    f.write(key + '\n')
                os.symlink(version, os.path.join(secret, '..data_tmp'))
                os.rename(os.path.join(secret, '..data_tmp'), os.path.join(secret, '..data'))

            publish('..v1', old_key)
            os.symlink('..data/gemini-api-key', os.path.join(secret, 'gemini-api-key'))
            emulator = Emulator(self.emulator_binary, '--api_key', old_key)
            # The stream in flight: its last event is held upstream until the rotation is over,
            # so what the test reads after it was sent after it (not waiting in a buffer).
            def event(text, finish=None):
                candidate = {'content': {'role': 'model', 'parts': [{'text': text}]}, 'index': 0}
                if finish:
                    candidate['finishReason'] = finish
                return {'candidates': [candidate], 'modelVersion': 'gemini-3-flash-preview',
                        'usageMetadata': {'promptTokenCount': 10, 'candidatesTokenCount': 3,
                                          'totalTokenCount': 13}}
            emulator.admin('POST', 'script', {
                'sse_events': [event('A red'), event(' square'), event(' rotated', 'STOP')],
                'hold_last_write': 'rotation'})
            gateway = Gateway(self.server_binary, emulator.url, '--gemini_api_key_file',
                              os.path.join(secret, 'gemini-api-key'),
                              '--gemini_api_key_poll_ms', '50', env={'GEMINI_API_KEY': ''})
            channel = self.grpc.insecure_channel(gateway.address)
            stub = self.pb2_grpc.VisionServiceStub(channel)
            in_flight = stub.Caption(self.request, timeout=CALL_TIMEOUT_S)
            first = next(in_flight)
            self.assertTrue(first.text)

            publish('..v2', new_key)
            shutil.rmtree(os.path.join(secret, '..v1'))
            gateway.child.wait_line(r'Gemini API key reloaded')
            emulator.admin('PUT', 'api_key', new_key)  # the old key is revoked upstream

            after = list(stub.Caption(self.request, timeout=CALL_TIMEOUT_S))
            self.assertEqual(after[-1].finish_reason, 'STOP')
            emulator.admin('POST', 'release', {'gate': 'rotation'})
            rest = list(in_flight)
            self.assertIn('rotated', ''.join(m.text for m in rest),
                          'the stream in flight did not go on after the rotation')
            self.assertEqual(rest[-1].finish_reason, 'STOP')
            # The two Captions (the gateway also read the models list at start: not a call).
            requests = [r for r in emulator.admin('GET', 'requests')
                        if 'GenerateContent' in r['target']]
            self.assertEqual(len(requests), 2)
            channel.close()
            log = gateway.child.log()
            self.assertNotIn(old_key, log)
            self.assertNotIn(new_key, log)
        finally:
            shutil.rmtree(secret, ignore_errors=True)


def main():
    if len(sys.argv) < 3:
        sys.stderr.write('usage: rollout_test.py <gemini-emulator> <vision-server>\n')
        return 2
    RolloutTest.emulator_binary, RolloutTest.server_binary = sys.argv[1:3]
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
    watchdog = threading.Timer(170, lambda: (sys.stderr.write('test timed out\n'),
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
