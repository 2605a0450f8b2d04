import { setFlagsFromString } from 'node:v8';

/**
 * Caps how far the JavaScript heap grows between full collections. V8 lets
 * the old generation reach up to 4x what the last full collection left live;
 * under load an API process promotes the state of every request in flight
 * (about 4 MB a scavenge at 100 concurrent requests), so its heap swung
 * between 28 and 140 MB each second and its RSS peaked at 225-233 MB. One
 * API process under wrk (-c100, 10 s, four rounds in turn): at 150 percent
 * (a factor of 2.5, the default) the peak was 177-186 MB with 27-31 full
 * collections against 14-19, and the CPU per request moved within the
 * rounds' spread; at 100, 165-170 MB but about 7% more CPU per request.
 *
 * V8 reads the factor each time it sets the next limit, so setting it once at
 * start-up applies to the whole life of the process. 0 leaves V8's own.
 */
export function limitHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
