#!/usr/bin/python3
"""A real Prometheus server (Debian's `prometheus`, started here with a 1 s scrape interval)
scrapes vision-server's --metrics_port while the gateway serves known calls, OK and failing; the
test then asks Prometheus's HTTP API for the counts by method and code, the histograms and the
token counters, and lints the exposition with `promtool check metrics`.

    /usr/bin/python3 prometheus_e2e_test.py <gemini-emulator> <vision-server>
Exit code 77 when prometheus/promtool or python3-grpcio are missing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import python_grpc_test as base  # noqa: E402  (helpers: processes, PNGs, stubs)

DEADLINE_S = 60
API_KEY = 'prom-e2e-key-5c1d'


def listening_ports(pid):
    """TCP ports a process listens on, from /proc (Prometheus does not print a port-0 bind)."""
    inodes = set()
    fd_dir = '/proc/%d/fd' % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[8:-1])
    ports = []
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == '0A' and fields[9] in inodes:  # 0A = LISTEN
                    ports.append(int(fields[1].split(':')[1], 16))
    return ports


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def until(what, probe, deadline_s=DEADLINE_S):
    """Polls probe() (short waits) until it returns a truthy value; fails after deadline_s."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            last = probe()
            if last:
                return last
        except (OSError, ValueError, KeyError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError('timed out waiting for %s (last: %r)' % (what, last))


class PrometheusEndToEnd(unittest.TestCase):
    emulator_binary = None
    server_binary = None

    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.tmp = tempfile.mkdtemp(prefix='vg-prom-e2e-')
        os.makedirs(os.path.join(cls.tmp, 'stubs'))
        cls.pb2, pb2_grpc = base.generate_stubs(os.path.join(cls.tmp, 'stubs'))
        _, match = base.start_and_wait([cls.emulator_binary, '--port', '0', '--api_key', API_KEY],
                                       'stdout', r'gemini-emulator listening on (http://\S+:\d+)')
        cls.emulator_url = match.group(1)
        server, match = base.start_and_wait(
            [cls.server_binary, '--port', '0', '--metrics_port', '0', '--listen_host',
             '127.0.0.1', '--gemini_base_url', cls.emulator_url, '--log_format', 'json',
             # One attempt per call: the scripted 429 below must reach the caller, not be
             # retried away (the retry policy is tested in tests/integration/fault_*).
             '--max_attempts', '1'],
            'stderr', r'metrics on http://127\.0\.0\.1:(\d+)/metrics',
            env={'GEMINI_API_KEY': API_KEY})
        cls.metrics_port = int(match.group(1))
        cls.server = server
        grpc_port = until('gRPC port', lambda: [p for p in listening_ports(server.pid)
                                                if p != cls.metrics_port])[0]
        cls.channel = grpc.insecure_channel('127.0.0.1:%d' % grpc_port)
        cls.stub = pb2_grpc.VisionServiceStub(cls.channel)

        config = os.path.join(cls.tmp, 'prometheus.yml')
        with open(config, 'w') as f:
            f.write('global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
                    'scrape_configs:\n  - job_name: vision-gateway\n'
                    '    static_configs:\n      - targets: ["127.0.0.1:%d"]\n' % cls.metrics_port)
        cls.prometheus = subprocess.Popen(
            ['prometheus', '--config.file', config, '--storage.tsdb.path',
             os.path.join(cls.tmp, 'data'), '--web.listen-address', '127.0.0.1:0',
             '--log.level', 'warn'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base.CHILDREN.append(cls.prometheus)
        port = until('Prometheus listening', lambda: listening_ports(cls.prometheus.pid))[0]
        cls.prom = 'http://127.0.0.1:%d' % port
        until('Prometheus ready', lambda: http_get(cls.prom + '/-/ready')[0] == 200)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, 'channel', None) is not None:
            cls.channel.close()
        base.kill_children()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def query(self, promql):
        status, body = http_get(self.prom + '/api/v1/query?' +
                                urllib.parse.urlencode({'query': promql}))
        self.assertEqual(status, 200)
        answer = json.loads(body)
        self.assertEqual(answer['status'], 'success', body)
        return answer['data']['result']

    def value(self, promql):
        result = self.query(promql)
        return float(result[0]['value'][1]) if result else None

    def script(self, responses):
        request = urllib.request.Request(self.emulator_url + '/emulator/script',
                                         data=json.dumps(responses).encode(), method='POST',
                                         headers={'content-type': 'application/json'})
        with urllib.request.urlopen(request, timeout=10) as response:
            self.assertEqual(response.status, 200)

    def test_prometheus_sees_the_calls_served(self):
        pb2 = self.pb2
        png = base.make_png(320, 240, (255, 255, 255), (220, 20, 20), (80, 60, 240, 180))
        prompt_tokens = output_tokens = 0
        # 3 OK captions.
        for _ in range(3):
            messages = list(self.stub.Caption(
                pb2.CaptionRequest(images=[pb2.Image(content=png)]), timeout=20))
            usage = messages[-1].usage
            prompt_tokens += usage.prompt_tokens
            output_tokens += usage.output_tokens
        # 2 refused before any upstream call.
        for _ in range(2):
            with self.assertRaises(self.grpc.RpcError) as error:
                list(self.stub.Caption(pb2.CaptionRequest(prompt='no image'), timeout=20))
            self.assertEqual(error.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        # 1 upstream quota error.
        self.script([{'status': 429, 'body': {'error': {
            'code': 429, 'message': 'Quota exceeded.', 'status': 'RESOURCE_EXHAUSTED'}}}])
        with self.assertRaises(self.grpc.RpcError) as error:
            list(self.stub.Caption(pb2.CaptionRequest(images=[pb2.Image(content=png)]),
                                   timeout=20))
        self.assertEqual(error.exception.code(), self.grpc.StatusCode.RESOURCE_EXHAUSTED)
        # 2 OK detections (one red box each).
        objects = 0
        for _ in range(2):
            for message in self.stub.Detect(pb2.DetectRequest(image=pb2.Image(content=png)),
                                            timeout=20):
                if message.HasField('detection'):
                    objects += 1
                if message.HasField('summary'):
                    prompt_tokens += message.summary.usage.prompt_tokens
                    output_tokens += message.summary.usage.output_tokens
        self.assertEqual(objects, 2)
        # 1 unary CountTokens.
        self.stub.CountTokens(pb2.CountTokensRequest(images=[pb2.Image(content=png)]), timeout=20)

        svc = 'grpc_service="vision.v1.VisionService"'
        # Wait for a scrape taken after the last call.
        until('a scrape with every call', lambda: self.value(
            'sum(grpc_server_handled_total{%s})' % svc) == 9)
        self.assertEqual(self.value('up{job="vision-gateway"}'), 1)

        def handled(method, code):
            return self.value('grpc_server_handled_total{%s,grpc_method="%s",grpc_code="%s"}'
                              % (svc, method, code))
        self.assertEqual(handled('Caption', 'OK'), 3)
        self.assertEqual(handled('Caption', 'InvalidArgument'), 2)
        self.assertEqual(handled('Caption', 'ResourceExhausted'), 1)
        self.assertEqual(handled('Detect', 'OK'), 2)
        self.assertEqual(handled('CountTokens', 'OK'), 1)
        self.assertEqual(handled('Segment', 'OK') or 0, 0)
        self.assertEqual(self.value('grpc_server_started_total{%s,grpc_method="Caption",'
                                    'grpc_type="server_stream"}' % svc), 6)
        self.assertEqual(self.value('grpc_server_started_total{%s,grpc_method="CountTokens",'
                                    'grpc_type="unary"}' % svc), 1)
        self.assertEqual(self.value('grpc_server_msg_received_total{%s,grpc_method="Detect"}'
                                    % svc), 2)
        # ImageInfo + 1 detection + Summary per Detect call.
        self.assertEqual(self.value('grpc_server_msg_sent_total{%s,grpc_method="Detect"}' % svc),
                         6)
        # Histograms: one observation per call, and a finite p99 from the buckets.
        self.assertEqual(self.value('grpc_server_handling_seconds_count{%s,grpc_method="Caption"}'
                                    % svc), 6)
        self.assertEqual(self.value('grpc_server_handling_seconds_bucket{%s,grpc_method="Caption",'
                                    'le="+Inf"}' % svc), 6)
        p99 = self.value('histogram_quantile(0.99, sum by (le) (grpc_server_handling_seconds_bucket'
                         '{%s,grpc_method="Caption"}))' % svc)
        self.assertTrue(0 < p99 < 20, p99)
        self.assertEqual(self.value('sum(vision_gateway_overhead_seconds_count)'), 9)
        self.assertEqual(self.value('vision_gateway_upstream_request_seconds_count{'
                                    'operation="streamGenerateContent",model="gemini-3-flash-preview"}'),
                         6)
        # Upstream requests by outcome, tokens, objects.
        self.assertEqual(self.value('vision_gateway_upstream_requests_total{operation='
                                    '"streamGenerateContent",outcome="OK"}'), 5)
        self.assertEqual(self.value('vision_gateway_upstream_requests_total{operation='
                                    '"streamGenerateContent",outcome="ResourceExhausted"}'), 1)
        self.assertEqual(self.value('vision_gateway_upstream_requests_total{operation='
                                    '"countTokens",outcome="OK"}'), 1)
        self.assertEqual(self.value('vision_gateway_tokens_total{kind="prompt",'
                                    'model="gemini-3-flash-preview"}'), prompt_tokens)
        self.assertEqual(self.value('vision_gateway_tokens_total{kind="output",'
                                    'model="gemini-3-flash-preview"}'), output_tokens)
        self.assertEqual(self.value('vision_gateway_objects_emitted_total{grpc_method="Detect"}'),
                         2)
        self.assertEqual(self.value('vision_gateway_calls_in_flight'), 0)
        self.assertGreater(self.value('process_resident_memory_bytes'), 1e6)
        self.assertGreater(self.value('process_open_fds'), 3)

        # The exposition itself passes promtool's lint.
        _, exposition = http_get('http://127.0.0.1:%d/metrics' % self.metrics_port)
        lint = subprocess.run(['promtool', 'check', 'metrics'], input=exposition, text=True,
                              capture_output=True, timeout=60)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        self.assertNotIn(API_KEY, exposition)


def main():
    if len(sys.argv) != 3:
        print('usage: prometheus_e2e_test.py <gemini-emulator> <vision-server>', file=sys.stderr)
        return 2
    if shutil.which('prometheus') is None or shutil.which('promtool') is None:
        print('SKIP: prometheus/promtool not installed (apt prometheus)', file=sys.stderr)
        return 77
    try:
        import grpc  # noqa: F401
    except ImportError:
        print('SKIP: python3-grpcio not installed', file=sys.stderr)
        return 77
    PrometheusEndToEnd.emulator_binary, PrometheusEndToEnd.server_binary = sys.argv[1:3]
    result = unittest.main(argv=[sys.argv[0], '-v'], exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())
