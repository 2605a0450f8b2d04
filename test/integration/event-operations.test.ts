import { expect } from 'chai';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState, expectNoStrayExpiry, snapshot } from '../support/state.js';

interface CouponBody {
  id: number;
  name: string;
  totalQuantity: number;
  issuedCount: number;
  remaining: number;
  startsAt: string | null;
  endsAt: string | null;
  status: string;
  code?: string;
  detail?: string;
  errors?: { path: string; message: string }[];
}

interface ListItem extends CouponBody {
  queued: number | null;
  inFlight: number | null;
}

const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

describe('operator endpoints: pause, resume, open, edit, list, stats', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  const post = (couponId: number, action: string) =>
    http<CouponBody>(h.baseUrl, 'POST', `/coupons/${couponId}/${action}`, { admin: true });
  const patch = (couponId: number, body: unknown) =>
    http<CouponBody>(h.baseUrl, 'PATCH', `/coupons/${couponId}`, { body, admin: true });
  const row = async (couponId: number) =>
    (
      await h.container.pool.query<{
        name: string;
        total_quantity: number;
        starts_at: Date | null;
        ends_at: Date | null;
        paused_at: Date | null;
        closed_at: Date | null;
      }>('SELECT * FROM coupons WHERE id = $1', [couponId])
    ).rows[0];
  const meta = (couponId: number) =>
    h.container.redis.hgetall(h.container.keys.coupon(couponId).meta);

  describe('pause and resume', () => {
    it('when an event is paused, then new requests get 409 EVENT_PAUSED, queued ones wait in place, and after resume they are decided in arrival order', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Pause', totalQuantity: 10 });
      await requestIssue(h.baseUrl, couponId, 'early');
      await drainAll(h.container);
      const waiting = ['q1', 'q2', 'q3', 'q4'];
      const ids: string[] = [];
      for (const u of waiting)
        ids.push((await requestIssue(h.baseUrl, couponId, u)).body.requestId);

      const paused = await post(couponId, 'pause');
      const pausedAt = (await row(couponId))?.paused_at;
      const again = await post(couponId, 'pause');
      const refused = await requestIssue(h.baseUrl, couponId, 'late');
      const issuedUser = await requestIssue(h.baseUrl, couponId, 'early');
      const waitingUser = await requestIssue(h.baseUrl, couponId, 'q2');
      const drainedWhilePaused = await drainAll(h.container);
      const whilePaused = await couponState(h.container, couponId);
      // Two coupons left for four waiting requests: only arrival order decides who gets them.
      const shrunk = await patch(couponId, { totalQuantity: 3 });

      expect([paused.status, paused.body.status]).to.deep.equal([200, 'PAUSED']);
      expect([again.status, again.body.status]).to.deep.equal([200, 'PAUSED']);
      expect(pausedAt).to.be.instanceOf(Date);
      expect((await row(couponId))?.paused_at?.getTime()).to.equal(pausedAt?.getTime());
      expect((await meta(couponId)).paused).to.equal('1');
      expect([refused.status, refused.body.code]).to.deep.equal([409, 'EVENT_PAUSED']);
      expect([issuedUser.status, issuedUser.body.code]).to.deep.equal([409, 'ALREADY_ISSUED']);
      expect([waitingUser.status, waitingUser.body.requestId]).to.deep.equal([202, ids[1]]);
      expect(drainedWhilePaused).to.equal(0);
      expect(whilePaused.queued).to.equal(4);
      expect(whilePaused.requestRows.map((r) => r.userId)).to.deep.equal(['early']);
      expect(shrunk.status).to.equal(200);

      const resumed = await post(couponId, 'resume');
      const resumedAgain = await post(couponId, 'resume');
      await drainAll(h.container);

      expect([resumed.status, resumed.body.status]).to.deep.equal([200, 'OPEN']);
      expect(resumedAgain.status).to.equal(200);
      expect((await row(couponId))?.paused_at).to.equal(null);
      expect((await meta(couponId)).paused).to.equal('0');
      const after = await couponState(h.container, couponId);
      expect(after.issuedRows.map((r) => r.userId)).to.deep.equal(['early', 'q1', 'q2']);
      const byUser = Object.fromEntries(after.requestRows.map((r) => [r.userId, r.reason]));
      expect(byUser).to.deep.include({ q1: null, q2: null, q3: 'SOLD_OUT', q4: 'SOLD_OUT' });
      expect(after.queued).to.equal(0);
      await expectNoStrayExpiry(h.container);
    });

    it('when a paused event is closed, then its queue is still settled EVENT_CLOSED', async () => {
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Paused then closed',
        totalQuantity: 5,
      });
      for (const u of ['c1', 'c2']) await requestIssue(h.baseUrl, couponId, u);
      expect((await post(couponId, 'pause')).status).to.equal(200);
      expect((await post(couponId, 'close')).status).to.equal(200);
      expect(await meta(couponId)).to.include({ paused: '1', closed: '1' });

      await drainAll(h.container);

      const state = await couponState(h.container, couponId);
      expect(state.requestRows.map((r) => r.reason).sort()).to.deep.equal([
        'EVENT_CLOSED',
        'EVENT_CLOSED',
      ]);
      expect(state.queued).to.equal(0);
    });

    it('when Redis lost a paused event, then the gate is rebuilt paused from PostgreSQL', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Lost', totalQuantity: 5 });
      await post(couponId, 'pause');
      await h.container.redis.del(...Object.values(h.container.keys.coupon(couponId)));

      const refused = await requestIssue(h.baseUrl, couponId, 'after-loss');

      expect([refused.status, refused.body.code]).to.deep.equal([409, 'EVENT_PAUSED']);
      expect(await meta(couponId)).to.include({ paused: '1', stock: '5' });
      expect((await couponState(h.container, couponId)).queued).to.equal(0);
    });

    it('when Redis lost the pause of a paused event, then consistency names the drift and a sync puts the pause back', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Synced', totalQuantity: 5 });
      await post(couponId, 'pause');
      await h.container.redis.hset(h.container.keys.coupon(couponId).meta, 'paused', '0');

      const seen = await http<{ drift: { code: string }[] }>(
        h.baseUrl,
        'GET',
        `/coupons/${couponId}/consistency`,
        { admin: true },
      );
      const synced = await http(h.baseUrl, 'POST', `/coupons/${couponId}/sync`, { admin: true });
      const after = await http<{ consistent: boolean }>(
        h.baseUrl,
        'GET',
        `/coupons/${couponId}/consistency`,
        { admin: true },
      );

      expect(seen.body.drift.map((d) => d.code)).to.deep.equal(['PAUSED_MISMATCH']);
      expect(synced.status).to.equal(200);
      expect((await meta(couponId)).paused).to.equal('1');
      expect(after.body.consistent).to.equal(true);
    });

    it('when a finished event is paused, then 409 EVENT_FINISHED and nothing changes', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Over', totalQuantity: 5 });
      await post(couponId, 'close');
      const before = await snapshot(h.container, h.prefix);

      const res = await post(couponId, 'pause');

      expect([res.status, res.body.code]).to.deep.equal([409, 'EVENT_FINISHED']);
      expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
    });
  });

  describe('open', () => {
    it('when a scheduled event is opened, then it starts now in PostgreSQL and Redis and accepts; opening again changes nothing', async () => {
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Later',
        totalQuantity: 5,
        startsAt: inSeconds(3600),
      });
      const early = await requestIssue(h.baseUrl, couponId, 'u1');

      const opened = await post(couponId, 'open');
      const startsAt = (await row(couponId))?.starts_at;
      const accepted = await requestIssue(h.baseUrl, couponId, 'u1');
      const again = await post(couponId, 'open');

      expect([early.status, early.body.code]).to.deep.equal([409, 'EVENT_NOT_OPEN']);
      expect([opened.status, opened.body.status]).to.deep.equal([200, 'OPEN']);
      expect(startsAt!.getTime()).to.be.at.most(Date.now());
      expect((await meta(couponId)).startsAt).to.equal(String(startsAt!.getTime()));
      expect(accepted.status).to.equal(202);
      expect([again.status, again.body.startsAt]).to.deep.equal([200, startsAt!.toISOString()]);
      expect((await row(couponId))?.starts_at?.getTime()).to.equal(startsAt!.getTime());
    });

    it('when a scheduled event whose gate is not loaded is opened, then the gate is loaded open', async () => {
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Unloaded',
        totalQuantity: 5,
        startsAt: inSeconds(3600),
      });
      await h.container.redis.del(...Object.values(h.container.keys.coupon(couponId)));

      expect((await post(couponId, 'open')).status).to.equal(200);

      expect((await meta(couponId)).stock).to.equal('5');
      expect((await requestIssue(h.baseUrl, couponId, 'u1')).status).to.equal(202);
    });

    it('when a paused or closed event is opened, then 409 with EVENT_PAUSED or EVENT_FINISHED and nothing changes', async () => {
      const pausedId = await createCoupon(h.baseUrl, { name: 'Paused', totalQuantity: 5 });
      const closedId = await createCoupon(h.baseUrl, { name: 'Closed', totalQuantity: 5 });
      await post(pausedId, 'pause');
      await post(closedId, 'close');
      const before = await snapshot(h.container, h.prefix);

      const paused = await post(pausedId, 'open');
      const closed = await post(closedId, 'open');

      expect([paused.status, paused.body.code]).to.deep.equal([409, 'EVENT_PAUSED']);
      expect(paused.body.detail).to.contain('resume');
      expect([closed.status, closed.body.code]).to.deep.equal([409, 'EVENT_FINISHED']);
      expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
    });
  });

  describe('PATCH', () => {
    it('when the quantity shrinks below what is issued or being decided, then 409 QUANTITY_BELOW_ISSUED names the minimum and neither store changes', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Shrink', totalQuantity: 10 });
      for (const u of ['i1', 'i2']) await requestIssue(h.baseUrl, couponId, u);
      await drainAll(h.container);
      await requestIssue(h.baseUrl, couponId, 'f1');
      // A batch decided in Redis but not yet in PostgreSQL: PostgreSQL alone would allow 2.
      await h.container.queue.take(couponId, 10, 60_000, 'in-flight');
      const before = await snapshot(h.container, h.prefix);

      const below = await patch(couponId, { totalQuantity: 2 });

      expect([below.status, below.body.code]).to.deep.equal([409, 'QUANTITY_BELOW_ISSUED']);
      expect(below.body.detail).to.contain('below 3');
      expect(below.body.errors).to.deep.equal([
        { path: 'totalQuantity', message: 'must be at least 3' },
      ]);
      expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
    });

    it('when the quantity shrinks below the issued count, then PostgreSQL refuses it before Redis is asked', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Below', totalQuantity: 10 });
      for (const u of ['i1', 'i2', 'i3']) await requestIssue(h.baseUrl, couponId, u);
      await drainAll(h.container);
      // Redis drifted and would allow it: the database's count still decides.
      await h.container.redis.hset(h.container.keys.coupon(couponId).meta, 'stock', '10');
      const before = await snapshot(h.container, h.prefix);

      const below = await patch(couponId, { totalQuantity: 1 });

      expect([below.status, below.body.code]).to.deep.equal([409, 'QUANTITY_BELOW_ISSUED']);
      expect(below.body.detail).to.contain('below 3');
      expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
    });

    it('when the quantity shrinks to exactly what is taken, then both stores hold it and newcomers get SOLD_OUT; when it grows, then they are admitted again', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Resize', totalQuantity: 10 });
      for (const u of ['i1', 'i2']) await requestIssue(h.baseUrl, couponId, u);
      await drainAll(h.container);
      await requestIssue(h.baseUrl, couponId, 'f1');
      await h.container.queue.take(couponId, 10, 60_000, 'in-flight');

      const shrunk = await patch(couponId, { totalQuantity: 3 });
      const refused = await requestIssue(h.baseUrl, couponId, 'n1');

      expect([shrunk.status, shrunk.body.totalQuantity]).to.deep.equal([200, 3]);
      expect((await row(couponId))?.total_quantity).to.equal(3);
      expect(await meta(couponId)).to.include({ total: '3', stock: '0' });
      expect([refused.status, refused.body.code]).to.deep.equal([409, 'SOLD_OUT']);

      const grown = await patch(couponId, { totalQuantity: 5 });
      const admitted = await requestIssue(h.baseUrl, couponId, 'n1');

      expect([grown.status, grown.body.totalQuantity]).to.deep.equal([200, 5]);
      expect((await row(couponId))?.total_quantity).to.equal(5);
      expect(await meta(couponId)).to.include({ total: '5', stock: '2' });
      expect(admitted.status).to.equal(202);
    });

    it('when the quantity changes while a sync holds the coupon, then 409 SYNC_IN_PROGRESS and nothing changes', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Syncing', totalQuantity: 10 });
      await h.container.maintenance.lockSync(couponId, 60_000);
      const before = await snapshot(h.container, h.prefix);

      const res = await patch(couponId, { totalQuantity: 20 });

      expect([res.status, res.body.code]).to.deep.equal([409, 'SYNC_IN_PROGRESS']);
      expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
    });

    it('when the window and name change, then PostgreSQL and the Redis gate hold the new window and accepting follows it', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Window', totalQuantity: 5 });
      const startsAt = inSeconds(3600);
      const endsAt = inSeconds(7200);

      const res = await patch(couponId, { name: 'Moved', startsAt, endsAt });
      const refused = await requestIssue(h.baseUrl, couponId, 'u1');

      expect(res.status).to.equal(200);
      expect(res.body).to.include({ name: 'Moved', startsAt, endsAt, status: 'SCHEDULED' });
      const r = await row(couponId);
      expect([r?.name, r?.starts_at?.toISOString(), r?.ends_at?.toISOString()]).to.deep.equal([
        'Moved',
        startsAt,
        endsAt,
      ]);
      expect(await meta(couponId)).to.include({
        startsAt: String(Date.parse(startsAt)),
        endsAt: String(Date.parse(endsAt)),
      });
      expect([refused.status, refused.body.code]).to.deep.equal([409, 'EVENT_NOT_OPEN']);

      const cleared = await patch(couponId, { startsAt: null });

      expect(cleared.body.status).to.equal('OPEN');
      expect((await meta(couponId)).startsAt).to.equal('');
      expect((await requestIssue(h.baseUrl, couponId, 'u1')).status).to.equal(202);
    });

    it('when the window is not valid or the event is over, then 400 or 409 EVENT_FINISHED and nothing changes', async () => {
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Rules',
        totalQuantity: 5,
        startsAt: inSeconds(3600),
      });
      const closedId = await createCoupon(h.baseUrl, { name: 'Closed', totalQuantity: 5 });
      await post(closedId, 'close');
      const before = await snapshot(h.container, h.prefix);

      const beforeStart = await patch(couponId, { endsAt: inSeconds(60) });
      const past = await patch(couponId, { startsAt: null, endsAt: inSeconds(-60) });
      const closed = await patch(closedId, { endsAt: inSeconds(3600) });

      expect([beforeStart.status, beforeStart.body.code]).to.deep.equal([400, 'VALIDATION_FAILED']);
      expect(beforeStart.body.errors?.[0]?.message).to.equal('must be after startsAt');
      expect([past.status, past.body.code]).to.deep.equal([400, 'VALIDATION_FAILED']);
      expect(past.body.errors?.[0]?.message).to.equal('must be in the future');
      expect([closed.status, closed.body.code]).to.deep.equal([409, 'EVENT_FINISHED']);
      const after = await snapshot(h.container, h.prefix);
      expect(after).to.deep.equal(before);
      // The quantity of a finished event may still grow.
      const closedQuantity = await patch(closedId, { totalQuantity: 6 });
      expect([closedQuantity.status, closedQuantity.body.totalQuantity]).to.deep.equal([200, 6]);
    });
  });

  describe('GET /coupons', () => {
    it('when events exist, then they come newest first with live figures, filtered by status in SQL, a page at a time', async () => {
      const open = await createCoupon(h.baseUrl, { name: 'Open', totalQuantity: 5 });
      const scheduled = await createCoupon(h.baseUrl, {
        name: 'Scheduled',
        totalQuantity: 5,
        startsAt: inSeconds(3600),
      });
      const paused = await createCoupon(h.baseUrl, { name: 'Paused', totalQuantity: 5 });
      const closed = await createCoupon(h.baseUrl, { name: 'Closed', totalQuantity: 5 });
      const soldOut = await createCoupon(h.baseUrl, { name: 'Sold out', totalQuantity: 1 });
      const busy = await createCoupon(h.baseUrl, { name: 'Busy', totalQuantity: 5 });
      await post(paused, 'pause');
      await post(closed, 'close');
      await requestIssue(h.baseUrl, soldOut, 's1');
      await drainAll(h.container);
      for (const u of ['b1', 'b2', 'b3']) await requestIssue(h.baseUrl, busy, u);
      await h.container.queue.take(busy, 1, 60_000, 'busy-batch');
      // Redis lost this one: its figures come from PostgreSQL alone.
      await h.container.redis.del(...Object.values(h.container.keys.coupon(open)));

      const all = await http<{ items: ListItem[]; nextCursor: string | null; limit: number }>(
        h.baseUrl,
        'GET',
        '/coupons',
        { admin: true },
      );

      expect(all.status).to.equal(200);
      expect(all.body.items.map((c) => c.id)).to.deep.equal([
        busy,
        soldOut,
        closed,
        paused,
        scheduled,
        open,
      ]);
      expect(all.body.nextCursor).to.equal(null);
      expect(all.body.limit).to.equal(20);
      const byId = new Map(all.body.items.map((c) => [c.id, c]));
      expect(byId.get(busy)).to.include({ status: 'OPEN', queued: 2, inFlight: 1, remaining: 4 });
      expect(byId.get(soldOut)).to.include({ status: 'SOLD_OUT', issuedCount: 1, remaining: 0 });
      expect(byId.get(open)).to.include({ status: 'OPEN', queued: null, inFlight: null });

      const expected: Record<string, number[]> = {
        OPEN: [busy, open],
        SCHEDULED: [scheduled],
        PAUSED: [paused],
        SOLD_OUT: [soldOut],
        CLOSED: [closed],
        ENDED: [],
      };
      for (const [status, ids] of Object.entries(expected)) {
        const res = await http<{ items: ListItem[] }>(
          h.baseUrl,
          'GET',
          `/coupons?status=${status}`,
          { admin: true },
        );
        expect(
          res.body.items.map((c) => [c.id, c.status]),
          status,
        ).to.deep.equal(ids.map((id) => [id, status]));
      }

      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: Awaited<
          ReturnType<typeof http<{ items: ListItem[]; nextCursor: string | null }>>
        > = await http(h.baseUrl, 'GET', `/coupons?limit=4${cursor ? `&after=${cursor}` : ''}`, {
          admin: true,
        });
        expect(res.status).to.equal(200);
        seen.push(...res.body.items.map((c) => c.id));
        cursor = res.body.nextCursor;
        pages += 1;
      } while (cursor && pages < 10);
      expect(pages).to.equal(2);
      expect(seen).to.deep.equal(all.body.items.map((c) => c.id));
    });

    it('when an event has ended by its window, then the ENDED filter finds it', async () => {
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Ends soon',
        totalQuantity: 5,
        endsAt: inSeconds(3600),
      });
      await h.container.pool.query(
        "UPDATE coupons SET starts_at = now() - interval '2 hours', ends_at = now() - interval '1 hour' WHERE id = $1",
        [couponId],
      );

      const res = await http<{ items: ListItem[] }>(h.baseUrl, 'GET', '/coupons?status=ENDED', {
        admin: true,
      });

      expect(res.body.items.map((c) => [c.id, c.status])).to.deep.equal([[couponId, 'ENDED']]);
    });
  });

  describe('GET /coupons/:id/stats', () => {
    it('when requests were issued, refused, closed out and are still waiting, then stats counts each from where it lives', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Stats', totalQuantity: 3 });
      const k = h.container.keys.coupon(couponId);
      for (const u of ['a', 'b', 'c']) await requestIssue(h.baseUrl, couponId, u);
      // Three waiting for two coupons: the last is decided SOLD_OUT.
      await patch(couponId, { totalQuantity: 2 });
      await drainAll(h.container);
      // A request PostgreSQL overrules: Redis forgot that 'a' was issued.
      await h.container.redis.srem(k.issued, 'a');
      await h.container.redis.hset(k.meta, 'stock', '1');
      await requestIssue(h.baseUrl, couponId, 'a');
      await drainAll(h.container);
      await h.container.redis.hset(k.meta, 'stock', '0');
      await patch(couponId, { totalQuantity: 4 });
      for (const u of ['d', 'e']) await requestIssue(h.baseUrl, couponId, u);
      await h.container.queue.take(couponId, 1, 60_000, 'stats-batch');

      const res = await http<Record<string, unknown>>(
        h.baseUrl,
        'GET',
        `/coupons/${couponId}/stats`,
        { admin: true },
      );

      expect(res.status).to.equal(200);
      expect(res.body).to.deep.include({
        couponId,
        status: 'OPEN',
        loaded: true,
        totalQuantity: 4,
        remaining: 1,
        queued: 1,
        inFlight: 1,
        issued: 2,
        rejected: { SOLD_OUT: 1, ALREADY_ISSUED: 1, EVENT_CLOSED: 0 },
        rates: { windowSeconds: 60, accepted: 6, issued: 2 },
      });
    });

    it('when an event was closed with a backlog and Redis no longer holds it, then stats comes from PostgreSQL', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Closed stats', totalQuantity: 5 });
      for (const u of ['a', 'b', 'c']) await requestIssue(h.baseUrl, couponId, u);
      await post(couponId, 'close');
      await drainAll(h.container);
      await h.container.redis.del(...Object.values(h.container.keys.coupon(couponId)));

      const res = await http<Record<string, unknown>>(
        h.baseUrl,
        'GET',
        `/coupons/${couponId}/stats`,
        { admin: true },
      );

      expect(res.body).to.deep.include({
        status: 'CLOSED',
        loaded: false,
        remaining: 5,
        queued: 0,
        inFlight: 0,
        issued: 0,
        rejected: { SOLD_OUT: 0, ALREADY_ISSUED: 0, EVENT_CLOSED: 3 },
        rates: { windowSeconds: 60, accepted: 3, issued: 0 },
      });
    });
  });
});
