#!/usr/bin/python3
"""Policy for the rendered Kubernetes manifests (k8s/ overlays), checked without a cluster.

    /usr/bin/python3 policy_check.py RENDERED.yaml...   each file = one rendered overlay
    /usr/bin/python3 policy_check.py --self-test RENDERED.yaml
        breaks a rendered overlay in the ways the policy forbids and checks that each is caught

Invariants (each violation is reported with the object it is in):
- every container has startup, readiness and liveness probes; gRPC probes target a container
  port of the gRPC server and name a health service the server really registers
  (service/server/server.h): readiness the one that turns NOT_SERVING on SIGTERM, liveness and
  startup the one that stays SERVING while draining;
- every flag the manifests pass (container args and --flagfile files from ConfigMaps) is an
  ABSL_FLAG of the binary in that image (service/config/server_config.cc, emulator/main.cc) with
  a value of the flag's type; the gRPC container port equals --port;
- terminationGracePeriodSeconds > --drain_delay_s + --shutdown_grace_s; with a max connection
  age, its grace >= --upstream_timeout_s (recycling a connection never cuts a call);
- Service ports are named, set appProtocol and target a port the selected pods expose; selectors
  of Services, PDBs and NetworkPolicies select pods of a Deployment in the render; a headless
  Service exists for client-side balancing; an HPA targets a Deployment of the render;
- resources: cpu and memory requests and limits on every container;
- security: non-root (pod or container runAsNonRoot, non-zero runAsUser), read-only root
  filesystem, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault, no
  service account token mounted;
- images pinned: a tag other than `latest`, or a digest;
- with TLS on the gRPC port (--tls_cert_file), probes target the plaintext health-only port
  (--health_port, container port "health"): the kubelet's gRPC probe speaks no TLS;
- the key, TLS and token file flags point into mounted Secrets, mounted without subPath (subPath mounts never
  see a rotated Secret);
- NetworkPolicy: ingress only to named container ports of the selected pods, egress only to
  DNS (53) and HTTPS (443), or to a port that pods of a rendered Deployment expose when every
  destination is a podSelector selecting such pods (the result cache's Redis, #21); the gRPC
  port reachable; the metrics port (plaintext,
  unauthenticated /metrics) reachable, but only from selected pods of another namespace
  (Prometheus), never from every source or an IP block;
- the batch spool (--batch_spool_dir) on an emptyDir with a sizeLimit: --batch_spool_max_mb is
  set and below that limit (a full spool would otherwise get the pod evicted);
- topology spread constraints never repeat a (topologyKey, whenUnsatisfiable) pair;
- third-party images (THIRD_PARTY_IMAGES) get every check above but the flags.
"""
import copy
import os
import re
import shlex
import sys

try:
    import yaml
except ImportError:
    sys.stderr.write('SKIP: python3-yaml is not installed (it comes with yamllint)\n')
    sys.exit(77)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BINARIES = {  # image name part → the file defining its flags
    'vision-server': 'service/config/server_config.cc',
    'gemini-emulator': 'emulator/main.cc',
}
ABSL_BUILTIN_FLAGS = {'flagfile': 'string', 'fromenv': 'string', 'tryfromenv': 'string',
                      'undefok': 'string'}
ALLOWED_EGRESS_PORTS = {53, 443}
# Images the repository does not build, by repository name: no flags of ours to check.
THIRD_PARTY_IMAGES = {
    'redis': 'the result cache store (k8s/components/result-cache-redis, #21)',
}


def flags_of(main_cc):
    """{flag name: type} of every ABSL_FLAG(type, name, ...) in a main.cc."""
    with open(os.path.join(REPO, main_cc)) as f:
        text = f.read()
    flags = {m.group(2): m.group(1).strip()
             for m in re.finditer(r'ABSL_FLAG\(\s*([\w:<>\s]+?)\s*,\s*(\w+)\s*,', text)}
    flags.update(ABSL_BUILTIN_FLAGS)
    return flags


def int_flag_defaults(main_cc):
    """{flag name: default} of the int ABSL_FLAGs of a main.cc."""
    with open(os.path.join(REPO, main_cc)) as f:
        text = f.read()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'ABSL_FLAG\(\s*int\s*,\s*(\w+)\s*,\s*(-?\d+)\s*,', text)}


def health_names():
    """The health service names vision-server registers: {'readiness': ..., 'liveness': ...}."""
    with open(os.path.join(REPO, 'service/server/server.h')) as f:
        text = f.read()
    names = dict(re.findall(r'static constexpr char (k\w+Name)\[\] = "([^"]*)";', text))
    return {'readiness': names.get('kServiceName'), 'liveness': names.get('kLivenessName')}


def quantity_mib(quantity):
    """A Kubernetes quantity ("4Gi", "512Mi", "1G") in MiB; None when not understood."""
    m = re.fullmatch(r'(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?', quantity)
    if not m:
        return None
    factor = {'Ki': 1 / 1024, 'Mi': 1, 'Gi': 1024, 'Ti': 1024 * 1024, 'k': 1000 / 1048576,
              'M': 1e6 / 1048576, 'G': 1e9 / 1048576, 'T': 1e12 / 1048576,
              None: 1 / 1048576}[m.group(2)]
    return int(m.group(1)) * factor


def value_fits(kind, value):
    if kind in ('int', 'int32_t', 'int64_t', 'uint16_t', 'uint32_t', 'uint64_t'):
        return re.fullmatch(r'-?\d+', value) is not None and (
            not kind.startswith('uint') or not value.startswith('-'))
    if kind == 'bool':
        return value.lower() in ('true', 'false', '1', '0', 'yes', 'no', 't', 'f', 'y', 'n')
    if kind == 'double':
        return re.fullmatch(r'-?\d+(\.\d*)?([eE]-?\d+)?', value) is not None
    return True


def parse_flag(arg):
    """('name', 'value' or None) for --name=value / --name / --noname; None if not a flag."""
    m = re.fullmatch(r'--?([A-Za-z_]\w*)(?:=(.*))?', arg, re.S)
    return (m.group(1), m.group(2)) if m else None


def selects(selector, labels):
    match = (selector or {}).get('matchLabels', selector or {})
    if not isinstance(match, dict) or not match:
        return False
    return all(labels.get(k) == v for k, v in match.items())


def third_party(image):
    repository = image.split('@', 1)[0].rsplit('/', 1)[-1].partition(':')[0]
    return repository in THIRD_PARTY_IMAGES


def image_binary(image):
    for part, main_cc in BINARIES.items():
        if part in image:
            return part, main_cc
    return None, None


class Checker:
    def __init__(self, docs, source):
        self.docs = [d for d in docs if d]
        self.source = source
        self.problems = []
        self.names = health_names()

    def fail(self, obj, message):
        self.problems.append('%s: %s/%s: %s' % (self.source, obj.get('kind'),
                                                obj.get('metadata', {}).get('name'), message))

    def of_kind(self, kind):
        return [d for d in self.docs if d.get('kind') == kind]

    def workloads(self):
        return self.of_kind('Deployment')

    def pod_labels(self):
        return [d['spec']['template']['metadata'].get('labels', {}) for d in self.workloads()]

    def run(self):
        if not self.workloads():
            self.problems.append('%s: no Deployment rendered' % self.source)
        for deployment in self.workloads():
            self.check_deployment(deployment)
        for service in self.of_kind('Service'):
            self.check_service(service)
        if not any(s['spec'].get('clusterIP') == 'None' for s in self.of_kind('Service')):
            self.problems.append('%s: no headless Service (clusterIP: None)' % self.source)
        for account in self.of_kind('ServiceAccount'):
            if account.get('automountServiceAccountToken') is not False:
                self.fail(account, 'automountServiceAccountToken must be false')
        for pdb in self.of_kind('PodDisruptionBudget'):
            if not any(selects(pdb['spec'].get('selector'), l) for l in self.pod_labels()):
                self.fail(pdb, 'selects no pod of a rendered Deployment')
        for hpa in self.of_kind('HorizontalPodAutoscaler'):
            ref = hpa['spec'].get('scaleTargetRef', {})
            if not any(d['metadata']['name'] == ref.get('name') and ref.get('kind') == 'Deployment'
                       for d in self.workloads()):
                self.fail(hpa, 'scaleTargetRef is not a rendered Deployment')
            if hpa['spec'].get('minReplicas', 1) < 2:
                self.fail(hpa, 'minReplicas < 2 leaves no replica during a rollout')
        for policy in self.of_kind('NetworkPolicy'):
            self.check_network_policy(policy)
        return self.problems

    # --- Deployments -------------------------------------------------------------------------

    def configmap_file(self, volumes, mounts, path):
        """Content of `path` if it is a key of a ConfigMap mounted in the container."""
        for mount in mounts:
            prefix = mount['mountPath'].rstrip('/') + '/'
            if not path.startswith(prefix):
                continue
            volume = volumes.get(mount['name'], {})
            name = volume.get('configMap', {}).get('name')
            for cm in self.of_kind('ConfigMap'):
                if cm['metadata']['name'] == name:
                    return cm.get('data', {}).get(path[len(prefix):])
        return None

    def container_flags(self, deployment, container, volumes):
        """[(name, value)] in the order the binary sees them: flag files expand in place."""
        flags = []
        for arg in (container.get('command') or [])[1:] + (container.get('args') or []):
            parsed = parse_flag(arg)
            if parsed is None:
                self.fail(deployment, '%s: argument %r is not a --flag' % (container['name'], arg))
                continue
            flags.append(parsed)
            if parsed[0] == 'flagfile':
                text = self.configmap_file(volumes, container.get('volumeMounts', []), parsed[1] or '')
                if text is None:
                    self.fail(deployment, '%s: --flagfile=%s is not a key of a mounted ConfigMap'
                              % (container['name'], parsed[1]))
                    continue
                for line in text.splitlines():
                    line = line.strip()
                    if not line or line.startswith('#'):
                        continue
                    parsed_line = parse_flag(line)
                    if parsed_line is None:
                        self.fail(deployment, '%s: flag file line %r is not a --flag'
                                  % (container['name'], line))
                    else:
                        flags.append(parsed_line)
        return flags

    def check_deployment(self, deployment):
        spec = deployment['spec']['template']['spec']
        pod_security = spec.get('securityContext', {})
        volumes = {v['name']: v for v in spec.get('volumes', [])}
        if spec.get('automountServiceAccountToken') is not False:
            self.fail(deployment, 'automountServiceAccountToken must be false in the pod spec')
        if pod_security.get('seccompProfile', {}).get('type') != 'RuntimeDefault':
            self.fail(deployment, 'pod seccompProfile must be RuntimeDefault')
        pairs = [(c.get('topologyKey'), c.get('whenUnsatisfiable'))
                 for c in spec.get('topologySpreadConstraints', [])]
        if not pairs:
            self.fail(deployment, 'no topologySpreadConstraints')
        if len(set(pairs)) != len(pairs):
            self.fail(deployment, 'topologySpreadConstraints repeat a key: %s' % pairs)
        for container in spec.get('containers', []):
            self.check_container(deployment, spec, pod_security, volumes, container)

    def check_container(self, deployment, spec, pod_security, volumes, container):
        name = container['name']
        where = 'container %s' % name
        image = container.get('image', '')
        if '@sha256:' not in image:
            tag = image.rsplit('/', 1)[-1].partition(':')[2]
            if not tag or tag == 'latest':
                self.fail(deployment, '%s: image %r is not pinned (tag or digest, not latest)'
                          % (where, image))
        resources = container.get('resources', {})
        for section in ('requests', 'limits'):
            for resource in ('cpu', 'memory'):
                if resource not in resources.get(section, {}):
                    self.fail(deployment, '%s: resources.%s.%s missing' % (where, section, resource))
        security = container.get('securityContext', {})
        if not (security.get('runAsNonRoot', pod_security.get('runAsNonRoot')) is True):
            self.fail(deployment, '%s: runAsNonRoot must be true' % where)
        if security.get('runAsUser', pod_security.get('runAsUser', 0)) == 0:
            self.fail(deployment, '%s: runAsUser must be a non-zero uid' % where)
        if security.get('readOnlyRootFilesystem') is not True:
            self.fail(deployment, '%s: readOnlyRootFilesystem must be true' % where)
        if security.get('allowPrivilegeEscalation') is not False:
            self.fail(deployment, '%s: allowPrivilegeEscalation must be false' % where)
        if security.get('privileged'):
            self.fail(deployment, '%s: privileged' % where)
        if 'ALL' not in security.get('capabilities', {}).get('drop', []) or \
                security.get('capabilities', {}).get('add'):
            self.fail(deployment, '%s: capabilities must drop ALL and add none' % where)
        if security.get('seccompProfile', {}).get('type', 'RuntimeDefault') != 'RuntimeDefault':
            self.fail(deployment, '%s: seccompProfile must be RuntimeDefault' % where)
        for mount in container.get('volumeMounts', []):
            if 'secret' in volumes.get(mount['name'], {}) and mount.get('subPath'):
                self.fail(deployment, '%s: Secret %s mounted with subPath never sees a rotation'
                          % (where, mount['name']))

        binary, main_cc = image_binary(image)
        if binary is None and third_party(image):
            for probe_kind in ('startupProbe', 'readinessProbe', 'livenessProbe'):
                if probe_kind not in container:
                    self.fail(deployment, '%s: no %s' % (where, probe_kind))
            return
        if binary is None:
            self.fail(deployment, '%s: image %r is neither vision-server nor gemini-emulator'
                      % (where, image))
            return
        known = flags_of(main_cc)
        values = {}
        for flag, value in self.container_flags(deployment, container, volumes):
            base = flag[2:] if flag.startswith('no') and flag[2:] in known and \
                known[flag[2:]] == 'bool' else flag
            if base not in known:
                self.fail(deployment, '%s: --%s is not a flag of %s (%s)' % (where, flag, binary, main_cc))
                continue
            if value is not None and not value_fits(known[base], value):
                self.fail(deployment, '%s: --%s=%s is not a %s' % (where, flag, value, known[base]))
                continue
            values[base] = value
        ports = {p.get('name'): p for p in container.get('ports', [])}
        for probe_kind in ('startupProbe', 'readinessProbe', 'livenessProbe'):
            if probe_kind not in container:
                self.fail(deployment, '%s: no %s' % (where, probe_kind))
        if binary == 'vision-server':
            self.check_server(deployment, spec, volumes, container, values, ports)

    def check_server(self, deployment, spec, volumes, container, values, ports):
        where = 'container %s' % container['name']
        grpc_port = ports.get('grpc', {}).get('containerPort')
        if grpc_port is None:
            self.fail(deployment, '%s: no container port named grpc' % where)
        elif str(grpc_port) != (values.get('port') or
                                str(int_flag_defaults(BINARIES['vision-server'])['port'])):
            self.fail(deployment, '%s: container port grpc %s != --port=%s'
                      % (where, grpc_port, values.get('port') or '(default)'))
        # The Prometheus endpoint (--metrics_port, k8s/monitoring scrapes the port named metrics).
        metrics_flag = values.get('metrics_port') or str(
            int_flag_defaults(BINARIES['vision-server'])['metrics_port'])
        metrics_port = ports.get('metrics', {}).get('containerPort')
        if int(metrics_flag) >= 0 and str(metrics_port) != metrics_flag:
            self.fail(deployment, '%s: container port metrics %s != --metrics_port=%s'
                      % (where, metrics_port, metrics_flag))
        expected = {'readinessProbe': self.names['readiness'],
                    'livenessProbe': self.names['liveness'],
                    'startupProbe': self.names['liveness']}
        # The kubelet's gRPC probe cannot speak TLS: with TLS on the gRPC port, probes go to the
        # plaintext health-only port (--health_port, container port "health").
        probe_port = grpc_port
        if values.get('tls_cert_file'):
            probe_port = ports.get('health', {}).get('containerPort')
            if probe_port is None or str(probe_port) != values.get('health_port'):
                self.fail(deployment, '%s: TLS on the gRPC port needs --health_port and a '
                          'container port named health with that number (kubelet gRPC probes '
                          'speak no TLS)' % where)
        for probe_kind, service in expected.items():
            probe = container.get(probe_kind, {})
            if 'grpc' not in probe:
                self.fail(deployment, '%s: %s must be a native gRPC probe' % (where, probe_kind))
                continue
            if probe['grpc'].get('port') != probe_port:
                self.fail(deployment, '%s: %s probes port %s, not the %s port %s'
                          % (where, probe_kind, probe['grpc'].get('port'),
                             'health' if probe_port != grpc_port else 'gRPC', probe_port))
            if probe['grpc'].get('service', '') != service:
                self.fail(deployment, '%s: %s asks health service %r; vision-server registers '
                          '%r for it (service/server/server.h)'
                          % (where, probe_kind, probe['grpc'].get('service', ''), service))
        defaults = int_flag_defaults(BINARIES['vision-server'])
        drain = int(values.get('drain_delay_s') or defaults['drain_delay_s'])
        grace = int(values.get('shutdown_grace_s') or defaults['shutdown_grace_s'])
        period = spec.get('terminationGracePeriodSeconds', 30)
        if period <= drain + grace:
            self.fail(deployment, 'terminationGracePeriodSeconds %d <= drain_delay_s %d + '
                      'shutdown_grace_s %d: the kubelet would kill calls still draining'
                      % (period, drain, grace))
        age = int(values.get('max_connection_age_s') or defaults['max_connection_age_s'])
        age_grace = int(values.get('max_connection_age_grace_s') or
                        defaults['max_connection_age_grace_s'])
        upstream = int(values.get('upstream_timeout_s') or defaults['upstream_timeout_s'])
        if age and age_grace and age_grace < upstream:
            self.fail(deployment, '--max_connection_age_grace_s %d < --upstream_timeout_s %d: '
                      'connection recycling would cut calls still running' % (age_grace, upstream))
        # The batch spool's bound fits the volume it is on (an emptyDir over its sizeLimit gets
        # the pod evicted).
        spool_dir = values.get('batch_spool_dir') or '/tmp'
        spool_mount = None
        for mount in container.get('volumeMounts', []):
            path = mount['mountPath'].rstrip('/')
            if (spool_dir == path or spool_dir.startswith(path + '/')) and \
                    (spool_mount is None or len(path) > len(spool_mount['mountPath'])):
                spool_mount = mount
        size_limit = None
        if spool_mount is not None:
            size_limit = volumes.get(spool_mount['name'], {}).get('emptyDir', {}).get('sizeLimit')
        if size_limit is not None:
            limit_mib = quantity_mib(str(size_limit))
            spool_mib = int(values.get('batch_spool_max_mb') or
                            defaults.get('batch_spool_max_mb', 0))
            if limit_mib is None or spool_mib <= 0 or spool_mib >= limit_mib:
                self.fail(deployment, '%s: --batch_spool_max_mb=%s must be set below the '
                          'sizeLimit %s of the emptyDir holding --batch_spool_dir=%s (a full '
                          'spool would get the pod evicted)'
                          % (where, spool_mib, size_limit, spool_dir))
        # Secrets are files in mounted Secrets (re-read on rotation), never images or ConfigMaps.
        for flag in ('gemini_api_key_file', 'tls_cert_file', 'tls_key_file', 'tls_client_ca_file',
                     'auth_tokens_file'):
            key_file = values.get(flag)
            if not key_file:
                continue
            mounted = False
            for mount in container.get('volumeMounts', []):
                if 'secret' in volumes.get(mount['name'], {}) and \
                        key_file.startswith(mount['mountPath'].rstrip('/') + '/'):
                    mounted = True
            if not mounted:
                self.fail(deployment, '%s: --%s=%s is not in a mounted Secret'
                          % (where, flag, key_file))

    # --- Services and policies ---------------------------------------------------------------

    def pods_selected(self, selector):
        return [d for d in self.workloads()
                if selects(selector, d['spec']['template']['metadata'].get('labels', {}))]

    def container_ports(self, deployments):
        ports = set()
        for d in deployments:
            for c in d['spec']['template']['spec']['containers']:
                for p in c.get('ports', []):
                    ports.add(p.get('name'))
                    ports.add(p['containerPort'])
        return ports

    def check_service(self, service):
        targets = self.pods_selected(service['spec'].get('selector'))
        if not targets:
            self.fail(service, 'selects no pod of a rendered Deployment')
        exposed = self.container_ports(targets)
        for port in service['spec'].get('ports', []):
            if not port.get('name'):
                self.fail(service, 'port %s has no name' % port.get('port'))
            if not port.get('appProtocol'):
                self.fail(service, 'port %s has no appProtocol' % port.get('name'))
            target = port.get('targetPort', port.get('port'))
            if target not in exposed:
                self.fail(service, 'port %s targets %r, which no selected container exposes'
                          % (port.get('name'), target))

    def check_network_policy(self, policy):
        spec = policy['spec']
        targets = self.pods_selected(spec.get('podSelector'))
        if not targets:
            self.fail(policy, 'selects no pod of a rendered Deployment')
        exposed = {p.get('name') for d in targets for c in d['spec']['template']['spec']['containers']
                   for p in c.get('ports', [])}
        if set(spec.get('policyTypes', [])) != {'Ingress', 'Egress'}:
            self.fail(policy, 'policyTypes must be Ingress and Egress')
        for rule in spec.get('ingress', []):
            if not rule.get('ports'):
                self.fail(policy, 'an ingress rule allows every port')
            for port in rule.get('ports', []):
                if port.get('port') not in exposed:
                    self.fail(policy, 'ingress port %r is not a named port of the pods'
                              % port.get('port'))

        def rules_to(port_name):
            return [r for r in spec.get('ingress', [])
                    if any(p.get('port') == port_name for p in r.get('ports', []))]
        if 'grpc' in exposed and not rules_to('grpc'):
            self.fail(policy, 'no ingress rule admits the grpc port')
        if 'metrics' in exposed:
            if not rules_to('metrics'):
                self.fail(policy, 'no ingress rule admits the metrics port: Prometheus cannot '
                          'scrape it (k8s/monitoring ServiceMonitor)')
            for rule in rules_to('metrics'):
                peers = rule.get('from') or []
                if not peers:
                    self.fail(policy, 'the metrics port is open to every source; admit only '
                              'Prometheus (from: namespaceSelector + podSelector)')
                for peer in peers:
                    namespaces = peer.get('namespaceSelector') or {}
                    if 'ipBlock' in peer or not (namespaces.get('matchLabels') or
                                                 namespaces.get('matchExpressions')):
                        self.fail(policy, 'the metrics port admits %r; admit only Prometheus '
                                  '(a namespaceSelector naming its namespace, + podSelector)'
                                  % peer)
        for rule in spec.get('egress', []):
            if not rule.get('ports'):
                self.fail(policy, 'an egress rule allows every port')
            for port in rule.get('ports', []):
                if port.get('port') not in ALLOWED_EGRESS_PORTS and \
                        not self.egress_to_own_pods(rule, port.get('port')):
                    self.fail(policy, 'egress to port %r (only DNS 53 and HTTPS 443, or a port '
                              'of pods of this render named by podSelector)' % port.get('port'))

    def egress_to_own_pods(self, rule, port):
        """Whether every destination of `rule` is a podSelector (same namespace, no IP block)
        selecting pods of a rendered Deployment that expose `port`."""
        peers = rule.get('to') or []
        if not peers:
            return False
        for peer in peers:
            if set(peer) != {'podSelector'}:
                return False
            targets = self.pods_selected(peer['podSelector'])
            if not targets or port not in self.container_ports(targets):
                return False
        return True


def check(docs, source):
    return Checker(docs, source).run()


def server_container(docs):
    for d in docs:
        if d.get('kind') == 'Deployment':
            for c in d['spec']['template']['spec']['containers']:
                if 'vision-server' in c.get('image', ''):
                    return d, c
    raise AssertionError('no vision-server container')


def self_test(docs):
    """Each mutation must produce at least one problem mentioning `expect`."""
    def mutate(change):
        broken = copy.deepcopy(docs)
        change(broken)
        return broken

    def set_probe_service(docs_, kind, name):
        server_container(docs_)[1][kind]['grpc']['service'] = name

    def replace_flags(docs_, old, new):
        for d in docs_:
            if d.get('kind') == 'ConfigMap':
                for k, v in d.get('data', {}).items():
                    d['data'][k] = v.replace(old, new)

    cases = [
        ('readiness probe on an unregistered name', 'readinessProbe',
         lambda b: set_probe_service(b, 'readinessProbe', 'vision.v1.Vision')),
        ('liveness probe on the draining name', 'livenessProbe',
         lambda b: set_probe_service(b, 'livenessProbe', health_names()['readiness'])),
        ('image tag latest', 'not pinned',
         lambda b: server_container(b)[1].__setitem__('image', 'x/vision-server:latest')),
        ('image without tag', 'not pinned',
         lambda b: server_container(b)[1].__setitem__('image', 'x/vision-server')),
        ('unknown flag in the flag file', 'not a flag of vision-server',
         lambda b: replace_flags(b, '--drain_delay_s=', '--drain_delay=')),
        ('unknown flag in args', 'not a flag of vision-server',
         lambda b: server_container(b)[1]['args'].append('--no_such_flag=1')),
        ('flag value of the wrong type', 'is not a int',
         lambda b: replace_flags(b, '--shutdown_grace_s=20', '--shutdown_grace_s=20s')),
        ('grace period too short', 'terminationGracePeriodSeconds',
         lambda b: server_container(b)[0]['spec']['template']['spec'].__setitem__(
             'terminationGracePeriodSeconds', 25)),
        ('drain delay raised past the grace period', 'terminationGracePeriodSeconds',
         lambda b: replace_flags(b, '--drain_delay_s=5', '--drain_delay_s=30')),
        ('connection age grace shorter than a call', 'connection recycling',
         lambda b: replace_flags(b, '--max_connection_age_grace_s=130', '--max_connection_age_grace_s=60')),
        ('batch spool bound over its emptyDir', 'batch_spool_max_mb',
         lambda b: replace_flags(b, '--batch_spool_max_mb=3584', '--batch_spool_max_mb=8192')),
        ('port flag differs from the container port', '!= --port',
         lambda b: replace_flags(b, '--port=50051', '--port=50052')),
        ('writable root filesystem', 'readOnlyRootFilesystem',
         lambda b: server_container(b)[1]['securityContext'].__setitem__(
             'readOnlyRootFilesystem', False)),
        ('no memory limit', 'resources.limits.memory',
         lambda b: server_container(b)[1]['resources']['limits'].pop('memory')),
        ('runs as root', 'runAsUser',
         lambda b: server_container(b)[1]['securityContext'].__setitem__('runAsUser', 0)),
        ('missing startup probe', 'no startupProbe',
         lambda b: server_container(b)[1].pop('startupProbe')),
        ('service targets a missing port', 'no selected container exposes',
         lambda b: [s['spec']['ports'][0].__setitem__('targetPort', 'grcp')
                    for s in b if s.get('kind') == 'Service'][:1]),
        ('service token mounted', 'automountServiceAccountToken',
         lambda b: server_container(b)[0]['spec']['template']['spec'].__setitem__(
             'automountServiceAccountToken', True)),
    ]
    if any(d.get('kind') == 'NetworkPolicy' for d in docs):
        cases.append(('egress to any port', 'egress',
                      lambda b: [p['spec']['egress'][1]['ports'].append({'port': 80})
                                 for p in b if p.get('kind') == 'NetworkPolicy' and
                                 len(p['spec'].get('egress', [])) > 1]))

        def own_pod_egress(b):
            return [r for p in b if p.get('kind') == 'NetworkPolicy'
                    for r in p['spec'].get('egress', [])
                    if any(x.get('port') not in ALLOWED_EGRESS_PORTS for x in r.get('ports', []))]
        if own_pod_egress(docs):
            cases.append(('egress to Redis open to every destination', 'egress to port',
                          lambda b: [r.pop('to') for r in own_pod_egress(b)]))
            cases.append(('egress to Redis open to another namespace', 'egress to port',
                          lambda b: [r['to'][0].__setitem__('namespaceSelector', {})
                                     for r in own_pod_egress(b)]))

        def policies(b):
            return [p for p in b if p.get('kind') == 'NetworkPolicy']

        def metrics_rules(b):
            return [r for p in policies(b) for r in p['spec']['ingress']
                    if any(x.get('port') == 'metrics' for x in r.get('ports', []))]
        cases.append(('metrics port open to every source', 'open to every source',
                      lambda b: [r.pop('from') for r in metrics_rules(b)]))
        cases.append(('metrics port open to any pod of any namespace', 'admit only Prometheus',
                      lambda b: [r.__setitem__('from', [{'namespaceSelector': {}}])
                                 for r in metrics_rules(b)]))
        cases.append(('metrics port open to an IP block', 'admit only Prometheus',
                      lambda b: [r['from'].append({'ipBlock': {'cidr': '0.0.0.0/0'}})
                                 for r in metrics_rules(b)]))
        cases.append(('metrics port unreachable', 'Prometheus cannot scrape',
                      lambda b: [p['spec'].__setitem__('ingress', [
                          r for r in p['spec']['ingress'] if r not in metrics_rules(b)])
                                 for p in policies(b)]))
        cases.append(('gRPC port unreachable', 'admits the grpc port',
                      lambda b: [p['spec'].__setitem__('ingress', metrics_rules(b))
                                 for p in policies(b)]))
    # TLS on the gRPC port needs the plaintext health port for the probes, and its files in a
    # Secret; the token file too.
    cases.append(('token file outside a Secret', 'not in a mounted Secret',
                  lambda b: server_container(b)[1]['args'].append(
                      '--auth_tokens_file=/etc/vision-gateway/tokens')))
    server_args = server_container(docs)[1].get('args', [])
    if not any(a.startswith('--tls_cert_file=') for a in server_args):
        cases.append(('TLS turned on without a health port', 'health_port',
                      lambda b: server_container(b)[1]['args'].append(
                          '--tls_cert_file=/var/run/secrets/vision-gateway/tls/tls.crt')))
    else:
        def grpc_port(b):
            return next(p['containerPort'] for p in server_container(b)[1]['ports']
                        if p.get('name') == 'grpc')
        cases.append(('probe on the TLS port', 'not the health port',
                      lambda b: server_container(b)[1]['readinessProbe']['grpc'].__setitem__(
                          'port', grpc_port(b))))
        cases.append(('health port flag removed', 'health_port',
                      lambda b: server_container(b)[1].__setitem__('args', [
                          a for a in server_container(b)[1]['args']
                          if not a.startswith('--health_port=')])))
    if any('gemini_api_key_file' in a for a in server_container(docs)[1].get('args', [])):
        cases.append(('key Secret mounted with subPath', 'subPath',
                      lambda b: [m.__setitem__('subPath', 'gemini-api-key')
                                 for m in server_container(b)[1]['volumeMounts']
                                 if m['name'] == 'gemini-api-key']))
    failed = 0
    base = check(docs, 'unmodified')
    if base:
        print('self-test: the unmodified render already has problems: %s' % base)
        return 1
    for what, expect, change in cases:
        problems = check(mutate(change), what)
        if any(expect in p for p in problems):
            print('self-test ok: %s → %s' % (what, next(p for p in problems if expect in p)))
        else:
            failed += 1
            print('self-test FAILED: %s not caught (problems: %s)' % (what, problems))
    return failed


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main(argv):
    if len(argv) >= 2 and argv[0] == '--self-test':
        return 1 if self_test(load(argv[1])) else 0
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    problems = []
    for path in argv:
        found = check(load(path), os.path.basename(path))
        print('%s: %d problems' % (path, len(found)))
        problems += found
    for p in problems:
        print('POLICY ' + p)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
