/**
 * Run by the heap growth test in a process of its own (node --expose-gc --import tsx):
 * applies HEAP_GROWING_PERCENT from the environment as the service does at start-up, then
 * keeps a live set and churns objects that live through several scavenges (so they are
 * promoted, then dropped: the old-generation garbage that requests in flight leave), and
 * prints how high the old generation (the heap but its young spaces) went against what a
 * full collection leaves live there.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { loadConfig } from '../../src/infra/config.js';
import { limitHeapGrowth } from '../../src/infra/heap.js';

limitHeapGrowth(loadConfig().heapGrowingPercent);

const oldGenerationBytes = () =>
  getHeapSpaceStatistics()
    .filter((space) => !space.space_name.startsWith('new_'))
    .reduce((sum, space) => sum + space.space_used_size, 0);

const live: number[][] = [];
for (let i = 0; i < 20_000; i += 1) live.push(Array.from({ length: 500 }, (_, j) => i + j + 0.5));
const ring: number[][] = new Array<number[]>(10_000);
const fill = (from: number, to: number) => {
  for (let i = from; i < to; i += 1) {
    ring[i % ring.length] = Array.from({ length: 100 }, (_, j) => i + j + 0.5);
  }
};
fill(0, ring.length);
(globalThis as { gc?: () => void }).gc?.();
const liveBytes = oldGenerationBytes();

let peakBytes = 0;
for (let i = ring.length; i < 400_000; i += 1_000) {
  fill(i, i + 1_000);
  peakBytes = Math.max(peakBytes, oldGenerationBytes());
}
console.log(JSON.stringify({ liveBytes, peakBytes, kept: live.length + ring.length }));
