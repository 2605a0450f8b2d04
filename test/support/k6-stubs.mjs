// Loads k6 scripts in Node for tests: `k6`, `k6/http`, `k6/execution` and `k6/metrics`
// resolve to inert stand-ins and `__ENV` is an empty object, so that a script's module
// code (its options, scenarios and thresholds) runs and can be inspected. Nothing here
// sends a request: the stand-ins only exist to be imported.
import { register } from 'node:module';

globalThis.__ENV = globalThis.__ENV ?? {};

const stubs = {
  k6: 'export const check = () => true; export const sleep = () => undefined; export const group = (_n, f) => f();',
  'k6/http':
    'const fail = () => { throw new Error("k6/http is a stand-in in tests"); };' +
    'export default { get: fail, post: fail, request: fail, batch: fail, setResponseCallback: () => undefined, expectedStatuses: (...a) => a };',
  'k6/execution': 'export default { scenario: {}, vu: {}, instance: {}, test: { abort() {} } };',
  'k6/metrics':
    'class Metric { constructor(name) { this.name = name; } add() {} set() {} }' +
    'export class Counter extends Metric {} export class Gauge extends Metric {}' +
    'export class Rate extends Metric {} export class Trend extends Metric {}',
};

const hooks = `
const stubs = ${JSON.stringify(stubs)};
export async function resolve(specifier, context, next) {
  if (Object.hasOwn(stubs, specifier)) return { url: 'k6stub:' + specifier, shortCircuit: true };
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (url.startsWith('k6stub:')) {
    return { format: 'module', source: stubs[url.slice('k6stub:'.length)], shortCircuit: true };
  }
  return next(url, context);
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
