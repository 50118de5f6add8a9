#!/usr/bin/python3
"""Checks k8s/monitoring against the metrics vision-server really exports:
  - promtool check rules + promtool test rules (the alert unit tests, rules_test.yml here);
  - the PrometheusRule carries exactly the groups of the plain rules file;
  - kubectl kustomize renders the folder (when kubectl is installed);
  - every metric the Grafana dashboard and the rules query exists in a live gateway's /metrics
    (and every recording rule the dashboard or the alerts use is defined);
  - the live exposition passes `promtool check metrics`.

    /usr/bin/python3 check_monitoring.py <gemini-emulator> <vision-server>
Exit code 77 when promtool or python3-yaml is missing.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
MONITORING = os.path.join(REPO, 'k8s', 'monitoring')
sys.path.insert(0, os.path.join(REPO, 'tests', 'e2e'))
import python_grpc_test as processes  # noqa: E402  (start_and_wait, kill_children)

PROMQL_WORDS = {'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or',
                'unless', 'bool', 'offset', 'inf', 'nan'}


def metric_names(expr):
    """Metric (and recording rule) names an expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    expr = re.sub(r'\{[^}]*\}', '', expr)                     # label matchers
    expr = re.sub(r'\[[^\]]*\]', '', expr)                    # range selectors
    expr = re.sub(r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', '', expr)
    names = set()
    for match in re.finditer(r'[A-Za-z_:][A-Za-z0-9_:]*', expr):
        name = match.group(0)
        rest = expr[match.end():].lstrip()
        if rest.startswith('('):          # a function
            continue
        if name.lower() in PROMQL_WORDS or name.startswith('$'):
            continue
        if expr[max(0, match.start() - 1)] == '$':
            continue
        names.add(name)
    return names


def exported_families(exposition):
    return set(re.findall(r'^# TYPE (\S+) ', exposition, re.M))


def family_of(name, families):
    if name in families:
        return name
    for suffix in ('_bucket', '_count', '_sum'):
        if name.endswith(suffix) and name[:-len(suffix)] in families:
            return name[:-len(suffix)]
    return None


class MonitoringTest(unittest.TestCase):
    emulator_binary = None
    server_binary = None

    @classmethod
    def setUpClass(cls):
        import yaml
        cls.yaml = yaml
        with open(os.path.join(MONITORING, 'vision-gateway.rules.yml')) as f:
            cls.rules = yaml.safe_load(f)
        with open(os.path.join(MONITORING, 'dashboards', 'vision-gateway.json')) as f:
            cls.dashboard = json.load(f)

    @classmethod
    def tearDownClass(cls):
        processes.kill_children()

    def exposition(self):
        if getattr(type(self), '_exposition', None) is None:
            _, match = processes.start_and_wait(
                [self.emulator_binary, '--port', '0', '--api_key', 'k'], 'stdout',
                r'gemini-emulator listening on (http://\S+:\d+)')
            _, match = processes.start_and_wait(
                [self.server_binary, '--port', '0', '--metrics_port', '0', '--listen_host',
                 '127.0.0.1', '--gemini_base_url', match.group(1)],
                'stderr', r'metrics on (http://\S+/metrics)', env={'GEMINI_API_KEY': 'k'})
            with urllib.request.urlopen(match.group(1), timeout=10) as response:
                type(self)._exposition = response.read().decode()
        return type(self)._exposition

    def test_promtool_checks_the_rules(self):
        run = subprocess.run(['promtool', 'check', 'rules',
                              os.path.join(MONITORING, 'vision-gateway.rules.yml')],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)

    def test_promtool_unit_tests_of_the_alerts(self):
        run = subprocess.run(['promtool', 'test', 'rules', 'rules_test.yml'],
                             cwd=os.path.dirname(os.path.abspath(__file__)),
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        # Every alert has at least one test that expects it to fire.
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'rules_test.yml')) as f:
            tests = self.yaml.safe_load(f)
        fired = {t['alertname'] for case in tests['tests'] for t in case.get('alert_rule_test', [])
                 if t.get('exp_alerts')}
        alerts = {r['alert'] for g in self.rules['groups'] for r in g['rules'] if 'alert' in r}
        self.assertEqual(alerts - fired, set())

    def test_prometheus_rule_has_the_same_groups(self):
        with open(os.path.join(MONITORING, 'prometheus-rule.yaml')) as f:
            rule = self.yaml.safe_load(f)
        self.assertEqual(rule['kind'], 'PrometheusRule')
        self.assertEqual(rule['apiVersion'], 'monitoring.coreos.com/v1')
        self.assertEqual(rule['spec']['groups'], self.rules['groups'])

    def test_kustomize_renders(self):
        if shutil.which('kubectl') is None:
            self.skipTest('kubectl not installed')
        run = subprocess.run(['kubectl', 'kustomize', MONITORING], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        kinds = sorted(d['kind'] for d in self.yaml.safe_load_all(run.stdout) if d)
        self.assertEqual(kinds, ['PrometheusRule', 'ServiceMonitor'])
        monitor = [d for d in self.yaml.safe_load_all(run.stdout) if d and d['kind'] == 'ServiceMonitor'][0]
        self.assertEqual(monitor['spec']['endpoints'][0]['port'], 'metrics')
        self.assertEqual(monitor['spec']['endpoints'][0]['path'], '/metrics')

    def test_every_queried_metric_exists(self):
        exposition = self.exposition()
        families = exported_families(exposition)
        self.assertIn('grpc_server_handled_total', families)
        recorded = {r['record'] for g in self.rules['groups'] for r in g['rules'] if 'record' in r}
        queries = []
        for panel in self.dashboard['panels']:
            self.assertTrue(panel.get('targets'), panel['title'])
            for target in panel['targets']:
                queries.append(('dashboard: ' + panel['title'], target['expr']))
        for variable in self.dashboard['templating']['list']:
            query = variable.get('query')
            if isinstance(query, dict):
                match = re.match(r'label_values\((\w+),', query['query'])
                self.assertIsNotNone(match, query)
                queries.append(('dashboard variable ' + variable['name'], match.group(1)))
        for group in self.rules['groups']:
            for rule in group['rules']:
                queries.append(('rule ' + rule.get('record', rule.get('alert', '')), rule['expr']))
        checked = set()
        for where, expr in queries:
            names = metric_names(expr)
            self.assertTrue(names, '%s: no metric in %r' % (where, expr))
            for name in names:
                if ':' in name:
                    self.assertIn(name, recorded, '%s: recording rule %s is not defined' % (where, name))
                    continue
                self.assertIsNotNone(family_of(name, families),
                                     '%s: %s is not exported by vision-server' % (where, name))
                checked.add(name)
        # The dashboard covers the families the issue asks for.
        for needed in ('grpc_server_started_total', 'grpc_server_handling_seconds_bucket',
                       'vision_gateway_overhead_seconds_bucket', 'vision_gateway_tokens_total',
                       'vision_gateway_upstream_requests_total', 'vision_gateway_calls_in_flight',
                       'process_resident_memory_bytes'):
            self.assertIn(needed, checked)

    def test_saturation_alert_has_its_denominator(self):
        # vision_gateway:saturation:ratio divides by vision_gateway_concurrency_limit: a live
        # server must export the --max_concurrent_calls it runs with (here the flag's default).
        with open(os.path.join(REPO, 'service', 'config', 'server_config.cc')) as f:
            default = re.search(r'ABSL_FLAG\(int, max_concurrent_calls, (\d+),', f.read())
        self.assertIsNotNone(default, 'no --max_concurrent_calls flag in service/config/server_config.cc')
        value = re.search(r'^vision_gateway_concurrency_limit (\S+)$', self.exposition(), re.M)
        self.assertIsNotNone(value, 'vision_gateway_concurrency_limit is not exported')
        self.assertEqual(float(value.group(1)), float(default.group(1)))
        saturation = [r['expr'] for g in self.rules['groups'] for r in g['rules']
                      if r.get('record') == 'vision_gateway:saturation:ratio']
        self.assertEqual(len(saturation), 1)
        self.assertIn('vision_gateway_concurrency_limit', saturation[0])

    def test_exposition_passes_promtool_lint(self):
        run = subprocess.run(['promtool', 'check', 'metrics'], input=self.exposition(),
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)


def main():
    if len(sys.argv) != 3:
        print('usage: check_monitoring.py <gemini-emulator> <vision-server>', file=sys.stderr)
        return 2
    if shutil.which('promtool') is None:
        print('SKIP: promtool not installed (apt prometheus)', file=sys.stderr)
        return 77
    try:
        import yaml  # noqa: F401
    except ImportError:
        print('SKIP: python3-yaml not installed', file=sys.stderr)
        return 77
    MonitoringTest.emulator_binary, MonitoringTest.server_binary = sys.argv[1:3]
    result = unittest.main(argv=[sys.argv[0], '-v'], exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())
