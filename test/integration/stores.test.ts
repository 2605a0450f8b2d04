import { expect } from 'chai';
import { formatRequestId } from '../../src/domain/issue-request.js';
import { correctionsFor } from '../../src/domain/use-cases/batch-settler.js';
import { RedisScripts } from '../../src/infra/redis/scripts.js';
import { BatchNotWrittenError, type DecidedBatch } from '../../src/domain/ports.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, requestIssue } from '../support/http.js';
import { couponState } from '../support/state.js';

describe('the stores behind the ports', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  /** Queues one request per user, in order; returns the request ids the clients were given. */
  async function queueUsers(couponId: number, users: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const user of users) {
      const res = await requestIssue(h.baseUrl, couponId, user);
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      ids.push((res.body as { requestId: string }).requestId);
    }
    return ids;
  }

  describe('Redis take script', () => {
    it('when stock runs out inside a batch, then later requests are SOLD_OUT and stock never goes below zero', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Take', totalQuantity: 5 });
      await queueUsers(couponId, ['t1', 't2', 't3', 't4']);
      // Stock shrinks under the queue (as if an operator had corrected it): the script must not over-issue.
      await h.container.redis.hset(h.container.keys.coupon(couponId).meta, 'stock', '2');

      const batch = await h.container.queue.take(couponId, 10, 60_000, 'batch-take');

      expect(batch?.items.map((i) => [i.userId, i.outcome])).to.deep.equal([
        ['t1', 'ISSUED'],
        ['t2', 'ISSUED'],
        ['t3', 'SOLD_OUT'],
        ['t4', 'SOLD_OUT'],
      ]);
      const state = await couponState(h.container, couponId);
      expect(state.redisStock).to.equal(0);
      expect(state.redisIssued).to.deep.equal(['t1', 't2']);
      expect([state.queued, state.inflight, state.leasedBatches]).to.deep.equal([0, 4, 1]);
    });

    it('when a queued user is already in the issued set, then the duplicate check wins and no stock is taken', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Dup', totalQuantity: 5 });
      await queueUsers(couponId, ['d1', 'd2']);
      await h.container.redis.sadd(h.container.keys.coupon(couponId).issued, 'd1');

      const batch = await h.container.queue.take(couponId, 10, 60_000, 'batch-dup');

      expect(batch?.items.map((i) => i.outcome)).to.deep.equal(['ALREADY_ISSUED', 'ISSUED']);
      expect((await couponState(h.container, couponId)).redisStock).to.equal(4);
    });

    it('when stock is gone and a queued user is already issued, then the answer is ALREADY_ISSUED, not SOLD_OUT', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Dup at zero', totalQuantity: 5 });
      await queueUsers(couponId, ['z1', 'z2']);
      const k = h.container.keys.coupon(couponId);
      await h.container.redis.hset(k.meta, 'stock', '0');
      await h.container.redis.sadd(k.issued, 'z1');

      const batch = await h.container.queue.take(couponId, 10, 60_000, 'batch-zero');

      expect(batch?.items.map((i) => i.outcome)).to.deep.equal(['ALREADY_ISSUED', 'SOLD_OUT']);
      expect((await couponState(h.container, couponId)).redisStock).to.equal(0);
    });

    it('when a batch is compensated, then acknowledging it afterwards changes nothing (and the other way round)', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Once', totalQuantity: 5 });
      await queueUsers(couponId, ['o1', 'o2']);
      const batch = (await h.container.queue.take(
        couponId,
        10,
        60_000,
        'batch-once',
      )) as DecidedBatch;

      expect(await h.container.queue.compensate(batch)).to.equal('settled');
      const afterCompensation = await couponState(h.container, couponId);
      expect(await h.container.queue.acknowledge(batch, [])).to.equal('alreadySettled');
      expect(await h.container.queue.compensate(batch)).to.equal('alreadySettled');

      expect(await couponState(h.container, couponId)).to.deep.equal(afterCompensation);
      expect([
        afterCompensation.redisStock,
        afterCompensation.queued,
        afterCompensation.pendingRecords,
      ]).to.deep.equal([5, 2, 2]);
    });

    it('when one batch holds more requests than one Redis call may carry (9,000), then it is taken, recorded and acknowledged whole', async () => {
      const n = 9_000;
      const couponId = await createCoupon(h.baseUrl, { name: 'Big batch', totalQuantity: n - 1 });
      const k = h.container.keys.coupon(couponId);
      const scripts = new RedisScripts(h.container.redis);
      // Stock n - 1 and n - 1 queued: one more would be refused at the gate, so the last
      // request is queued directly to make the batch end with a SOLD_OUT.
      const users = Array.from({ length: n }, (_, i) => `big-${i}`);
      const replies = (await Promise.all(
        users
          .slice(0, n - 1)
          .map((u) =>
            scripts.run(
              'accept',
              [k.meta, k.issued, k.queue, k.requests, k.inflight, k.meta, k.meta],
              [u, 'Nonce00000', '', 0, 0, 0, 0],
            ),
          ),
      )) as [number][];
      expect(replies.filter((r) => r[0] !== 0)).to.deep.equal([]);
      const late = String(Date.now() * 1000 + 10_000_000);
      await h.container.redis.zadd(k.queue, late, users[n - 1] as string);
      await h.container.redis.hset(k.requests, late, `${users[n - 1]}|Nonce00000`);

      const batch = (await h.container.queue.take(
        couponId,
        n,
        60_000,
        'batch-big',
      )) as DecidedBatch;

      expect(batch.items).to.have.length(n);
      expect(batch.items.filter((i) => i.outcome === 'ISSUED')).to.have.length(n - 1);
      expect(batch.items[n - 1]).to.include({ userId: users[n - 1], outcome: 'SOLD_OUT' });
      expect(batch.items.every((i) => i.nonce === 'Nonce00000')).to.equal(true);
      const during = await couponState(h.container, couponId);
      expect([during.inflight, during.redisIssued.length, during.redisStock]).to.deep.equal([
        n,
        n - 1,
        0,
      ]);

      const result = await h.container.ledger.commit(batch);
      expect(
        await h.container.queue.acknowledge(
          batch,
          correctionsFor(batch, result.kind === 'committed' ? result.outcomes : new Map()),
        ),
      ).to.equal('settled');

      const after = await couponState(h.container, couponId);
      expect([
        after.inflight,
        after.pendingRecords,
        after.leasedBatches,
        after.queued,
      ]).to.deep.equal([0, 0, 0, 0]);
      expect(after.redisIssued.length).to.equal(n - 1);
      expect(after.issuedRows.length).to.equal(n - 1);
    });

    it('when the take asks for fewer than are queued, then it takes the earliest arrivals', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Order', totalQuantity: 50 });
      const users = Array.from({ length: 30 }, (_, i) => `ord-${i}`);
      await queueUsers(couponId, users);

      const first = await h.container.queue.take(couponId, 10, 60_000, 'batch-a');
      const second = await h.container.queue.take(couponId, 10, 60_000, 'batch-b');

      expect(first?.items.map((i) => i.userId)).to.deep.equal(users.slice(0, 10));
      expect(second?.items.map((i) => i.userId)).to.deep.equal(users.slice(10, 20));
    });

    function requestIdsOf(batch: DecidedBatch | null | undefined): string[] {
      return (batch?.items ?? []).map((i) =>
        formatRequestId({ couponId: batch?.couponId ?? 0, arrival: i.arrival, nonce: i.nonce }),
      );
    }

    it('when a batch is taken, then the worker holds exactly the requests the clients were given, and recovery reads the same batch from its record', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Record', totalQuantity: 3 });
      const ids = await queueUsers(couponId, ['r1', 'r2', 'r3']);
      // One coupon fewer than queued, so the batch holds more than one outcome.
      await h.container.redis.hset(h.container.keys.coupon(couponId).meta, 'stock', '2');

      const taken = await h.container.queue.take(couponId, 10, 1, 'batch-record');
      await new Promise((resolve) => setTimeout(resolve, 20));
      const [claimed] = await h.container.queue.claimExpired(couponId, 60_000, 10);

      expect(requestIdsOf(taken)).to.deep.equal(ids);
      expect(taken?.items.map((i) => i.outcome)).to.deep.equal(['ISSUED', 'ISSUED', 'SOLD_OUT']);
      expect(claimed).to.deep.equal(taken);
    });

    it('when a batch was recorded without its nonces (as before they were recorded), then it is still claimed with them and acknowledged', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Old record', totalQuantity: 5 });
      const ids = await queueUsers(couponId, ['old1', 'old2']);
      const taken = (await h.container.queue.take(couponId, 10, 1, 'batch-old')) as DecidedBatch;
      const k = h.container.keys.coupon(couponId);
      const record = JSON.parse((await h.container.redis.hget(k.batches, 'batch-old')) as string);
      expect(record.n, 'the nonces are recorded').to.have.length(2);
      delete record.n;
      await h.container.redis.hset(k.batches, 'batch-old', JSON.stringify(record));
      await new Promise((resolve) => setTimeout(resolve, 20));

      const [claimed] = await h.container.queue.claimExpired(couponId, 60_000, 10);
      expect(requestIdsOf(claimed)).to.deep.equal(ids);
      expect(claimed).to.deep.equal(taken);
      expect(await h.container.queue.acknowledge(taken, [])).to.equal('settled');

      const state = await couponState(h.container, couponId);
      expect([state.queued, state.inflight, state.leasedBatches]).to.deep.equal([0, 0, 0]);
      expect(state.redisIssued).to.deep.equal(['old1', 'old2']);
    });
  });

  describe('Redis accept script', () => {
    it('when the script runs after the caller gave up (Redis stalled), then it writes nothing', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Late', totalQuantity: 5 });
      const k = h.container.keys.coupon(couponId);
      const scripts = new RedisScripts(h.container.redis);
      const before = await couponState(h.container, couponId);

      const late = await scripts.run(
        'accept',
        [k.meta, k.issued, k.queue, k.requests, k.inflight, k.meta, k.meta],
        ['late-user', 'NNNNNNNNNN', Date.now() - 1, 0, 0, 0, 0],
      );
      const inTime = await scripts.run(
        'accept',
        [k.meta, k.issued, k.queue, k.requests, k.inflight, k.meta, k.meta],
        ['on-time', 'NNNNNNNNNN', Date.now() + 60_000, 0, 0, 0, 0],
      );

      expect(late).to.deep.equal([6, 0, 0, 0, 0]);
      expect((inTime as unknown[])[0]).to.equal(0);
      const after = await couponState(h.container, couponId);
      expect(await h.container.redis.zscore(k.queue, 'late-user')).to.equal(null);
      expect(after.queued).to.equal(before.queued + 1);
    });

    /** What the accept script keeps for a coupon: the queue with its scores, the records, the clock. */
    async function acceptState(couponId: number) {
      const k = h.container.keys.coupon(couponId);
      return {
        queue: await h.container.redis.zrange(k.queue, '0', '-1', 'WITHSCORES'),
        requests: await h.container.redis.hgetall(k.requests),
        clock: await h.container.redis.hget(k.meta, 'clock'),
      };
    }

    it('when a waiting user asks again, then the answer is the same request whether or not the queue is full, a newcomer gets the last place and then SOLD_OUT, and a repeat writes nothing', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Again', totalQuantity: 3 });
      const [q1, q2] = await queueUsers(couponId, ['q1', 'q2']);
      const twoQueued = await acceptState(couponId);

      const again1 = await requestIssue(h.baseUrl, couponId, 'q1');
      expect([again1.status, again1.body.requestId]).to.deep.equal([202, q1]);
      expect(await acceptState(couponId)).to.deep.equal(twoQueued);

      await queueUsers(couponId, ['q3']);
      const full = await acceptState(couponId);
      expect(full.queue.filter((_, i) => i % 2 === 0)).to.deep.equal(['q1', 'q2', 'q3']);
      expect(full.clock).to.equal(full.queue[5]);

      // The queue is as long as the stock: a user already in it still gets their request back.
      const again2 = await requestIssue(h.baseUrl, couponId, 'q2');
      expect([again2.status, again2.body.requestId]).to.deep.equal([202, q2]);
      const late = await requestIssue(h.baseUrl, couponId, 'q4');
      expect([late.status, late.body.code]).to.deep.equal([409, 'SOLD_OUT']);
      expect(await acceptState(couponId)).to.deep.equal(full);
    });

    it('when a user whose request is being decided asks again, then the answer is that request even with no stock left, and nothing is queued', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'In flight', totalQuantity: 2 });
      const [, b] = await queueUsers(couponId, ['a', 'b']);
      await h.container.redis.hset(h.container.keys.coupon(couponId).meta, 'stock', '1');
      const taken = await h.container.queue.take(couponId, 10, 60_000, 'batch-in-flight');
      expect(taken?.items.map((i) => i.outcome)).to.deep.equal(['ISSUED', 'SOLD_OUT']);
      const before = await acceptState(couponId);

      const againB = await requestIssue(h.baseUrl, couponId, 'b');
      const againA = await requestIssue(h.baseUrl, couponId, 'a');
      const newcomer = await requestIssue(h.baseUrl, couponId, 'c');

      expect([againB.status, againB.body.requestId]).to.deep.equal([202, b]);
      expect([againA.status, againA.body.code]).to.deep.equal([409, 'ALREADY_ISSUED']);
      expect([newcomer.status, newcomer.body.code]).to.deep.equal([409, 'SOLD_OUT']);
      expect(await acceptState(couponId)).to.deep.equal(before);
      const state = await couponState(h.container, couponId);
      expect([state.queued, state.inflight, state.redisStock]).to.deep.equal([0, 2, 0]);
    });
  });

  describe('PostgreSQL ledger', () => {
    it('when the same batch is committed twice, then the replay adds nothing and reports the same outcomes', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Replay', totalQuantity: 5 });
      await queueUsers(couponId, ['r1', 'r2']);
      const batch = (await h.container.queue.take(
        couponId,
        10,
        60_000,
        'batch-replay',
      )) as DecidedBatch;

      const first = await h.container.ledger.commit(batch);
      const rowsAfterFirst = await couponState(h.container, couponId);
      const second = await h.container.ledger.commit(batch);

      expect(second).to.deep.equal(first);
      const rowsAfterSecond = await couponState(h.container, couponId);
      expect(rowsAfterSecond.issuedRows).to.deep.equal(rowsAfterFirst.issuedRows);
      expect(rowsAfterSecond.issuedCount).to.equal(2);
    });

    it('when the same requests come back in a new batch, then their recorded outcomes stand and nothing is issued twice', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Rebatched', totalQuantity: 5 });
      await queueUsers(couponId, ['x1']);
      const batch = (await h.container.queue.take(couponId, 10, 60_000, 'batch-1')) as DecidedBatch;
      await h.container.ledger.commit(batch);

      // Redis, having lost track, decided the request anew, and differently.
      const again = await h.container.ledger.commit({
        ...batch,
        batchId: 'batch-2',
        items: batch.items.map((i) => ({ ...i, outcome: 'SOLD_OUT' as const })),
      });

      expect(again.kind).to.equal('committed');
      const item = batch.items[0] as DecidedBatch['items'][number];
      const requestId = formatRequestId({ couponId, arrival: item.arrival, nonce: item.nonce });
      expect(again.kind === 'committed' && again.outcomes.get(requestId)).to.deep.equal({
        outcome: 'ISSUED',
      });
      const state = await couponState(h.container, couponId);
      expect(state.issuedRows).to.have.length(1);
      expect(state.requestRows).to.have.length(1);
      expect(state.issuedCount).to.equal(1);
    });

    it('when Redis issues more than PostgreSQL has left, then PostgreSQL records SOLD_OUT and Redis is corrected', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Wrong Redis', totalQuantity: 2 });
      await queueUsers(couponId, ['w1', 'w2']);
      await h.container.pool.query('UPDATE coupons SET issued_count = 1 WHERE id = $1', [couponId]);

      await drainAll(h.container);

      const state = await couponState(h.container, couponId);
      expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(['w1']);
      expect(state.issuedCount).to.equal(2);
      expect(state.requestRows.find((r) => r.userId === 'w2')).to.include({
        status: 'REJECTED',
        reason: 'SOLD_OUT',
      });
      expect(state.redisIssued).to.deep.equal(['w1']);
      expect(state.redisStock).to.equal(0);
    });

    it('when PostgreSQL already holds the user as issued, then the request is ALREADY_ISSUED and its stock goes back to Redis', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Holder', totalQuantity: 3 });
      await h.container.pool.query(
        `INSERT INTO issued_coupons (coupon_id, user_id, request_id, issued_at) VALUES ($1, 'y1', 'earlier', now())`,
        [couponId],
      );
      await h.container.pool.query('UPDATE coupons SET issued_count = 1 WHERE id = $1', [couponId]);
      await queueUsers(couponId, ['y1']);

      await drainAll(h.container);

      const state = await couponState(h.container, couponId);
      expect(state.requestRows).to.deep.include({
        requestId: state.requestRows[0]?.requestId,
        userId: 'y1',
        status: 'REJECTED',
        reason: 'ALREADY_ISSUED',
      });
      expect(state.issuedRows).to.have.length(1);
      // Redis decided ISSUED and took one; PostgreSQL overruled it, so the unit comes back.
      expect(state.redisStock).to.equal(3);
      expect(state.redisIssued).to.deep.equal(['y1']);
    });

    it('when a batch was fenced off, then its late commit writes nothing', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Fenced', totalQuantity: 3 });
      await queueUsers(couponId, ['f1']);
      const batch = (await h.container.queue.take(
        couponId,
        10,
        60_000,
        'batch-fenced',
      )) as DecidedBatch;

      expect((await h.container.ledger.settle(batch)).kind).to.equal('abandoned');
      const late = await h.container.ledger.commit(batch);

      expect(late.kind).to.equal('abandoned');
      const state = await couponState(h.container, couponId);
      expect([state.issuedRows.length, state.requestRows.length, state.issuedCount]).to.deep.equal([
        0, 0, 0,
      ]);
      const id = formatRequestId({
        couponId,
        arrival: batch.items[0]!.arrival,
        nonce: batch.items[0]!.nonce,
      });
      expect(await h.container.ledger.findRequest(id)).to.equal(null);
    });

    it('when a batch mixes outcomes, then every ISSUED row points at the issued coupon of its own request', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Linked', totalQuantity: 3 });
      await queueUsers(couponId, ['l1', 'l2', 'l3']);
      await h.container.redis.hset(h.container.keys.coupon(couponId).meta, 'stock', '2');
      const batch = (await h.container.queue.take(couponId, 10, 60_000, 'batch-l')) as DecidedBatch;

      const result = await h.container.ledger.commit(batch);

      expect(result.kind).to.equal('committed');
      const { rows } = await h.container.pool.query<{
        userId: string;
        status: string;
        linked: string | null;
      }>(
        `SELECT q.user_id AS "userId", q.status, c.request_id AS linked
         FROM issue_requests q LEFT JOIN issued_coupons c ON c.id = q.issue_id
         WHERE q.coupon_id = $1 ORDER BY q.user_id`,
        [couponId],
      );
      const ids = await h.container.pool.query<{ userId: string; requestId: string }>(
        'SELECT user_id AS "userId", request_id AS "requestId" FROM issue_requests WHERE coupon_id = $1',
        [couponId],
      );
      const requestOf = new Map(ids.rows.map((r) => [r.userId, r.requestId]));
      expect(rows).to.deep.equal([
        { userId: 'l1', status: 'ISSUED', linked: requestOf.get('l1') },
        { userId: 'l2', status: 'ISSUED', linked: requestOf.get('l2') },
        { userId: 'l3', status: 'REJECTED', linked: null },
      ]);
    });

    it('when a batch would issue one user twice, then the unique index stops it and the whole batch is rolled back', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Clash', totalQuantity: 5 });
      await queueUsers(couponId, ['c1', 'c2']);
      const taken = (await h.container.queue.take(couponId, 10, 60_000, 'batch-c')) as DecidedBatch;
      // A batch Redis never hands out (one user issued twice in it): the lookups see nothing
      // in the database, so only the unique index on (coupon_id, user_id) stops the insert.
      const batch: DecidedBatch = {
        ...taken,
        items: taken.items.map((i) => ({ ...i, userId: 'c1' })),
      };

      const failure = await h.container.ledger.commit(batch).then(
        () => null,
        (err: unknown) => err,
      );

      expect(failure).to.be.instanceOf(BatchNotWrittenError);
      const state = await couponState(h.container, couponId);
      expect(state.issuedRows).to.deep.equal([]);
      expect(state.requestRows).to.deep.equal([]);
      expect(state.issuedCount).to.equal(0);
      const fence = await h.container.pool.query(
        'SELECT 1 FROM worker_batches WHERE batch_id = $1',
        ['batch-c'],
      );
      expect(fence.rowCount).to.equal(0);
    });
  });
});
