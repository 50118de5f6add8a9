// Validates rendered Kubernetes manifests offline against the schemas bundled in npm
// kubernetes-models@4 (Kubernetes 1.27 OpenAPI), and catches unknown fields, which those
// validators accept silently: every object is walked against the field lists of the bundled type
// definitions (.d.ts), so `replicaz:` or a misplaced `service:` is an error.
//
//   node validate_manifests.mjs RENDERED.yaml...
//   node validate_manifests.mjs --self-test     (proves the checks catch what they must)
// Exit: 0 valid, 1 invalid, 77 tooling missing (npm packages not installed).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const require = createRequire(path.join(REPO, 'package.json'));

let YAML;
let modelsRoot;
try {
  YAML = require('yaml');
  modelsRoot = path.dirname(require.resolve('kubernetes-models/package.json'));
} catch (error) {
  console.error(`SKIP: npm tooling missing (${error.message}); run scripts/install-deps.sh`);
  process.exit(77);
}

// --- type definitions (.d.ts) → field lists --------------------------------------------------

const fileCache = new Map();

// Parses one generated .d.ts: its exported interface (fields and their type text), its type
// aliases, and where each imported name comes from.
function parseDts(file) {
  if (fileCache.has(file)) return fileCache.get(file);
  const text = fs.readFileSync(file, 'utf8');
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm)) {
    for (const name of m[1].split(',').map((s) => s.trim())) imports.set(name, m[2]);
  }
  const lines = text.split('\n');
  let fields = null;
  let isAlias = false;
  for (let i = 0; i < lines.length; i++) {
    if (/^export (declare )?type /.test(lines[i])) isAlias = true;
    const head = fields === null && lines[i].match(/^export interface \w+(?: extends ([\w, ]+))? \{$/);
    if (head) {
      fields = new Map();
      if (head[1] && head[1].split(',').map((s) => s.trim()).includes('TypeMeta')) {
        fields.set('apiVersion', 'string');
        fields.set('kind', 'string');
      }
      for (i++; i < lines.length && lines[i] !== '}'; i++) {
        const m = lines[i].match(/^ {4}"([^"]+)"(\?)?: (.*)$/);
        if (!m) continue;
        let type = m[3];
        if (type.endsWith('{')) {  // a multi-line map type, closed by "    };"
          const body = [];
          for (i++; i < lines.length && lines[i] !== '    };'; i++) body.push(lines[i].trim());
          type = `{ ${body.join(' ')} }`;
        } else {
          type = type.replace(/;$/, '');
        }
        fields.set(m[1], type);
      }
    }
  }
  const parsed = { file, imports, fields, isAlias };
  fileCache.set(file, parsed);
  return parsed;
}

function resolveImport(fromFile, spec) {
  if (spec.startsWith('.')) return path.resolve(path.dirname(fromFile), `${spec}.d.ts`);
  const parts = spec.split('/');
  const pkg = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const rest = parts.slice(spec.startsWith('@') ? 2 : 1).join('/');
  const req = createRequire(fromFile);
  const root = path.dirname(req.resolve(`${pkg}/package.json`));
  return path.join(root, `${rest}.d.ts`);
}

// Walks `value` against the type text `type` seen from `dts`; reports unknown fields.
function walkType(value, type, dts, where, errors) {
  type = type.trim();
  if (value === null || value === undefined) return;
  let m = type.match(/^Array<(.+)>$/);
  if (m) {
    if (Array.isArray(value)) value.forEach((v, i) => walkType(v, m[1], dts, `${where}[${i}]`, errors));
    return;
  }
  m = type.match(/^\{ \[key: string\]: (.+); \}$/);
  if (m) {
    if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walkType(v, m[1], dts, `${where}.${k}`, errors);
    }
    return;
  }
  if (/^I[A-Z]\w*$/.test(type) && dts.imports.has(type)) {
    walkObject(value, resolveImport(dts.file, dts.imports.get(type)), where, errors);
  }
  // Primitives, unions of primitives, any, object: nothing to walk.
}

function walkObject(value, file, where, errors) {
  const dts = parseDts(file);
  if (dts.fields === null || typeof value !== 'object' || Array.isArray(value)) return;
  for (const [key, v] of Object.entries(value)) {
    if (!dts.fields.has(key)) {
      errors.push(`${where}: unknown field "${key}" (${path.basename(file, '.d.ts')} has: ` +
                  `${[...dts.fields.keys()].join(', ')})`);
      continue;
    }
    walkType(v, dts.fields.get(key), dts, `${where}.${key}`, errors);
  }
}

// --- one object ---------------------------------------------------------------------------

function modelFile(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return path.join(modelsRoot, group, version, kind);
}

// prometheus-operator custom resources (k8s/monitoring) are not in the Kubernetes models: their
// fields (a subset of the CRDs' that covers what we use) are checked here the same way, unknown
// fields and missing required ones included. Keys: a path with [] for list items.
const OPERATOR_FIELDS = {
  'monitoring.coreos.com/v1 ServiceMonitor': {
    '': ['apiVersion', 'kind', 'metadata', 'spec'],
    'spec': ['jobLabel', 'selector', 'endpoints', 'namespaceSelector', 'targetLabels',
             'podTargetLabels', 'sampleLimit'],
    'spec.endpoints[]': ['port', 'targetPort', 'path', 'scheme', 'interval', 'scrapeTimeout',
                         'honorLabels', 'relabelings', 'metricRelabelings', 'params'],
  },
  'monitoring.coreos.com/v1 PrometheusRule': {
    '': ['apiVersion', 'kind', 'metadata', 'spec'],
    'spec': ['groups'],
    'spec.groups[]': ['name', 'interval', 'rules', 'limit'],
    'spec.groups[].rules[]': ['record', 'alert', 'expr', 'for', 'labels', 'annotations'],
  },
};

function validateOperatorObject(obj, label, fields) {
  const errors = [];
  const visit = (value, key, where) => {
    if (!(key in fields)) return;
    for (const field of Object.keys(value ?? {})) {
      if (!fields[key].includes(field)) {
        errors.push(`${label}${where}: unknown field "${field}" (has: ${fields[key].join(', ')})`);
      }
    }
    for (const [field, child] of Object.entries(value ?? {})) {
      const path = key === '' ? field : `${key}.${field}`;
      if (Array.isArray(child)) {
        child.forEach((item, i) => visit(item, `${path}[]`, `${where}.${field}[${i}]`));
      } else if (child && typeof child === 'object') {
        visit(child, path, `${where}.${field}`);
      }
    }
  };
  visit(obj, '', '');
  if (typeof obj.metadata?.name !== 'string') errors.push(`${label}: metadata.name is required`);
  if (obj.kind === 'ServiceMonitor') {
    if (!obj.spec?.selector) errors.push(`${label}: spec.selector is required`);
    if (!(obj.spec?.endpoints ?? []).length) errors.push(`${label}: spec.endpoints is empty`);
  } else {
    const groups = obj.spec?.groups ?? [];
    if (!groups.length) errors.push(`${label}: spec.groups is empty`);
    for (const group of groups) {
      if (typeof group.name !== 'string') errors.push(`${label}: a group has no name`);
      for (const rule of group.rules ?? []) {
        if (typeof rule.expr !== 'string' || (!rule.record === !rule.alert)) {
          errors.push(`${label}: group ${group.name}: a rule needs expr and one of record/alert`);
        }
      }
    }
  }
  return errors;
}

function validateObject(obj, label) {
  const errors = [];
  if (!obj || typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') {
    return [`${label}: not a Kubernetes object (apiVersion/kind missing)`];
  }
  const operator = OPERATOR_FIELDS[`${obj.apiVersion} ${obj.kind}`];
  if (operator) return validateOperatorObject(obj, label, operator);
  const base = modelFile(obj.apiVersion, obj.kind);
  if (!fs.existsSync(`${base}.js`)) {
    return [`${label}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind} (Kubernetes 1.27)`];
  }
  const Model = require(base)[obj.kind];
  try {
    new Model(obj).validate();
  } catch (error) {
    errors.push(`${label}: schema: ${error.message}`);
  }
  walkObject(obj, `${base}.d.ts`, label, errors);
  return errors;
}

export function validateText(text, source) {
  const errors = [];
  const docs = YAML.parseAllDocuments(text);
  let count = 0;
  docs.forEach((doc, index) => {
    if (doc.errors.length) {
      errors.push(`${source} document ${index}: YAML: ${doc.errors[0].message}`);
      return;
    }
    const obj = doc.toJS();
    if (obj === null) return;
    count++;
    const name = obj.metadata?.name ?? '?';
    errors.push(...validateObject(obj, `${source}: ${obj.kind}/${name}`));
  });
  return { errors, count };
}

// --- self-test: the checks must catch these ---------------------------------------------------

function selfTest() {
  const good = `apiVersion: apps/v1
kind: Deployment
metadata: {name: d, labels: {a: b}}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: c
          image: i:1
          ports: [{name: grpc, containerPort: 50051}]
          readinessProbe: {grpc: {port: 50051, service: s}}
          resources: {requests: {cpu: 100m, memory: 64Mi}}
`;
  const monitor = `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: m}
spec:
  selector: {matchLabels: {a: b}}
  endpoints:
    - port: metrics
      path: /metrics
`;
  const rule = `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: r}
spec:
  groups:
    - name: g
      rules:
        - record: r
          expr: up
`;
  const cases = [
    ['a valid Deployment', good, 0],
    ['unknown top-level spec field', good.replace('spec:\n  selector', 'spec:\n  replicaz: 2\n  selector'), 1],
    ['unknown field in a container', good.replace('image: i:1', 'image: i:1\n          imagePolicy: Always'), 1],
    ['unknown field in a probe', good.replace('service: s}', 'service: s, path: /x}'), 1],
    ['a wrong type', good.replace('containerPort: 50051', 'containerPort: "many"'), 1],
    ['a missing required field', good.replace('  selector: {matchLabels: {a: b}}\n', ''), 1],
    ['an unknown kind', 'apiVersion: v1\nkind: Servce\nmetadata: {name: x}\n', 1],
    ['a valid ServiceMonitor', monitor, 0],
    ['an unknown ServiceMonitor endpoint field', monitor.replace('path: /metrics', 'pth: /metrics'), 1],
    ['a ServiceMonitor without endpoints', monitor.replace(/  endpoints:[^]*/, '  endpoints: []\n'), 1],
    ['a valid PrometheusRule', rule, 0],
    ['a rule both record and alert', rule.replace('record: r', 'record: r\n          alert: A'), 1],
    ['an unknown rule field', rule.replace('expr: up', 'expr: up\n          severity: x'), 1],
  ];
  let failed = 0;
  for (const [what, text, minErrors] of cases) {
    const { errors } = validateText(text, what);
    const ok = minErrors === 0 ? errors.length === 0 : errors.length >= minErrors;
    if (!ok) {
      failed++;
      console.error(`self-test FAILED: ${what}: ${errors.length} errors: ${errors.join('; ')}`);
    } else {
      console.log(`self-test ok: ${what}${errors.length ? ` → ${errors[0]}` : ''}`);
    }
  }
  return failed;
}

const args = process.argv.slice(2);
if (args[0] === '--self-test') {
  process.exit(selfTest() ? 1 : 0);
}
if (args.length === 0) {
  console.error('usage: node validate_manifests.mjs RENDERED.yaml... | --self-test');
  process.exit(2);
}
let failed = 0;
for (const file of args) {
  const { errors, count } = validateText(fs.readFileSync(file, 'utf8'), path.basename(file));
  for (const e of errors) console.error(`INVALID ${e}`);
  if (count === 0) {
    console.error(`INVALID ${file}: no objects`);
    failed++;
  }
  failed += errors.length;
  console.log(`${file}: ${count} objects, ${errors.length} problems`);
}
process.exit(failed ? 1 : 0);
