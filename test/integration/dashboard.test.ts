import { expect } from 'chai';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ADMIN_TOKEN, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState } from '../support/state.js';
import { eventually, sleep } from '../support/eventually.js';

/** Debian's Chromium (the package `chromium`), driven by playwright-core: no browser download. */
const CHROMIUM = '/usr/bin/chromium';
/** Set to a path (docs/images/dashboard.png) to save a screenshot of the page while it shows a run. */
const SCREENSHOT = process.env.DASHBOARD_SCREENSHOT;

interface Load {
  /** Users whose request was accepted, with its request id. */
  readonly accepted: Map<string, string>;
  /** Users refused for good, by problem code (EVENT_PAUSED is retried, as a client would). */
  readonly refused: Map<string, number>;
  readonly done: Promise<void>;
}

/**
 * Many distinct users asking for a coupon, a few at a time, in the background.
 * For the screenshot each client waits between users, so the chart has a run to show.
 */
function startLoad(baseUrl: string, couponId: number, users: string[]): Load {
  const concurrency = SCREENSHOT ? 4 : 16;
  const accepted = new Map<string, string>();
  const refused = new Map<string, number>();
  let next = 0;
  const client = async () => {
    for (let i = next++; i < users.length; i = next++) {
      const user = users[i] as string;
      for (;;) {
        const res = await requestIssue(baseUrl, couponId, user);
        if (res.status === 202) {
          accepted.set(user, res.body.requestId);
          if (SCREENSHOT) await sleep(15);
          break;
        }
        const code = res.body.code ?? `HTTP ${res.status}`;
        if (code === 'EVENT_PAUSED') {
          await sleep(100);
          continue;
        }
        refused.set(code, (refused.get(code) ?? 0) + 1);
        break;
      }
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, client)).then(() => undefined);
  return { accepted, refused, done };
}

describe('the operator dashboard at /dashboard, in headless Chromium', function () {
  this.timeout(120_000);
  let h: Harness;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Every URL the page requested. */
  let requested: string[];
  /** Script errors and policy violations the page reported. */
  let pageProblems: string[];

  before(async function () {
    this.timeout(60_000);
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: install Debian's package \`chromium\` (apt-get install chromium)`,
      );
    }
    h = await startHarness();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-gpu',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await h?.cleanup();
  });

  beforeEach(async () => {
    context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    page = await context.newPage();
    requested = [];
    pageProblems = [];
    page.on('request', (request) => requested.push(request.url()));
    page.on('pageerror', (err) => pageProblems.push(err.message));
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) {
        pageProblems.push(message.text());
      }
    });
  });
  afterEach(async () => {
    await context.close();
  });

  /** Nothing came from anywhere but the service, and the page broke no rule of its policy. */
  function expectSelfContained(): void {
    const origin = new URL(h.baseUrl).origin;
    expect(requested.length).to.be.greaterThan(0);
    expect(requested.filter((url) => new URL(url).origin !== origin)).to.deep.equal([]);
    expect(pageProblems).to.deep.equal([]);
  }

  async function signIn(credential: string): Promise<void> {
    await page.goto(`${h.baseUrl}/dashboard`);
    await page.fill('#credential', credential);
    await page.click('#sign-in-form button[type="submit"]');
  }

  const cell = (couponId: number, field: string) =>
    page.locator(`tr[data-coupon-id="${couponId}"] [data-field="${field}"]`);
  /** What the page shows in a cell (its number, or the status). */
  const shown = async (couponId: number, field: string) =>
    (await cell(couponId, field).getAttribute('data-value', { timeout: 5_000 })) ?? '';
  const shownNumber = async (couponId: number, field: string) =>
    Number(await shown(couponId, field));
  const polls = async () => Number(await page.getAttribute('#updated', 'data-polls'));
  const button = (couponId: number, action: string) =>
    page.locator(`tr[data-coupon-id="${couponId}"] button[data-action="${action}"]`);

  /** Resolves once the page has polled `n` more times. */
  async function nextPolls(n: number): Promise<void> {
    const target = (await polls()) + n;
    await eventually(`${n} more polls`, async () => ((await polls()) >= target ? true : undefined));
  }

  const paused = async (couponId: number) =>
    h.container.redis.hget(h.container.keys.coupon(couponId).meta, 'paused');
  const dbCoupon = async (couponId: number) =>
    (
      await h.container.pool.query<{ paused_at: Date | null; closed_at: Date | null }>(
        'SELECT paused_at, closed_at FROM coupons WHERE id = $1',
        [couponId],
      )
    ).rows[0];

  it('when the page is opened, then it and its scripts come from the service under a policy that allows only the service, and an unknown asset is 404', async () => {
    const response = await page.goto(`${h.baseUrl}/dashboard`);
    await page.waitForSelector('#sign-in-form', { state: 'visible' });

    const csp = response?.headers()['content-security-policy'] ?? '';
    expect(response?.status()).to.equal(200);
    expect(csp).to.contain("default-src 'none'").and.contain("script-src 'self'");
    expect(csp).to.contain("connect-src 'self'").and.contain("form-action 'none'");
    expect(csp).to.not.contain('unsafe-inline');
    expect(await page.isHidden('#board')).to.equal(true);
    const uplot = await http(h.baseUrl, 'GET', '/dashboard/assets/uPlot.iife.min.js');
    const script = await http(h.baseUrl, 'GET', '/dashboard/assets/dashboard.js');
    expect([uplot.status, uplot.headers.get('cache-control')]).to.deep.equal([
      200,
      'public, max-age=3600',
    ]);
    expect(uplot.contentType).to.match(/javascript/);
    expect([script.status, script.headers.get('cache-control')]).to.deep.equal([200, 'no-store']);
    const unknown = await http(h.baseUrl, 'GET', '/dashboard/assets/..%2Fpackage.json');
    expect([unknown.status, unknown.body.code]).to.deep.equal([404, 'FILE_NOT_FOUND']);
    expect(
      requested.map((url) => new URL(url).pathname).filter((p) => p.startsWith('/dashboard')),
    ).to.include.members([
      '/dashboard',
      '/dashboard/assets/uPlot.iife.min.js',
      '/dashboard/assets/uPlot.min.css',
      '/dashboard/assets/dashboard.js',
      '/dashboard/assets/dashboard.css',
    ]);
    expectSelfContained();
  });

  it('when a wrong credential is entered, then the page says it was refused, shows no figures and keeps nothing', async () => {
    await createCoupon(h.baseUrl, { name: 'Members only', totalQuantity: 5 });

    await signIn('not-the-admin-token');

    const error = await eventually('the sign-in error', async () => {
      const text = (await page.textContent('#sign-in-error')) ?? '';
      return text === '' ? undefined : text;
    });
    expect(error).to.contain('refused').and.contain('UNAUTHORIZED');
    expect(await page.isVisible('#sign-in-error')).to.equal(true);
    expect(await page.isHidden('#board')).to.equal(true);
    expect(await page.locator('#events tbody tr').count()).to.equal(0);
    expect(await page.evaluate('sessionStorage.length')).to.equal(0);
    expectSelfContained();
  });

  it('when an operator opens a scheduled event and closes another, then close asks first, a refusal changes nothing, and each result is shown and recorded; the sign-in survives a reload and ends at sign-out', async () => {
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString();
    const scheduled = await createCoupon(h.baseUrl, {
      name: 'Spring preview',
      totalQuantity: 500,
      startsAt: tomorrow,
    });
    const staff = await createCoupon(h.baseUrl, { name: 'Staff pre-sale', totalQuantity: 50 });
    await signIn(ADMIN_TOKEN);
    await eventually('the scheduled event', async () =>
      (await shown(scheduled, 'status')) === 'SCHEDULED' ? true : undefined,
    );
    expect(await button(scheduled, 'open').isEnabled()).to.equal(true);
    expect(await button(scheduled, 'resume').isDisabled()).to.equal(true);
    // The credential lasts as long as the tab: a reload keeps the operator signed in.
    await page.reload();
    await page.waitForSelector(`tr[data-coupon-id="${scheduled}"]`);
    expect(await page.isHidden('#sign-in')).to.equal(true);

    await button(scheduled, 'open').click();
    await eventually('the opened event', async () =>
      (await shown(scheduled, 'status')) === 'OPEN' ? true : undefined,
    );
    expect(await page.textContent('#notice')).to.contain('Opened event #' + scheduled);
    expect(await button(scheduled, 'open').isDisabled()).to.equal(true);
    const opened = await http(h.baseUrl, 'GET', `/coupons/${scheduled}`);
    expect(opened.body.status).to.equal('OPEN');

    // Dismissed: nothing is closed.
    const questions: string[] = [];
    page.once('dialog', (dialog) => {
      questions.push(dialog.message());
      void dialog.dismiss();
    });
    await button(staff, 'close').click();
    await nextPolls(2);
    expect(questions).to.have.length(1);
    expect(questions[0]).to.contain('Staff pre-sale').and.contain('cannot be undone');
    expect(await shown(staff, 'status')).to.equal('OPEN');
    expect((await dbCoupon(staff))?.closed_at).to.equal(null);

    // Accepted: closed, in both stores.
    page.once('dialog', (dialog) => void dialog.accept());
    await button(staff, 'close').click();
    await eventually('the closed event', async () =>
      (await shown(staff, 'status')) === 'CLOSED' ? true : undefined,
    );
    expect(await page.textContent('#notice')).to.contain(`Closed event #${staff}`);
    expect((await dbCoupon(staff))?.closed_at).to.be.instanceOf(Date);
    for (const action of ['open', 'pause', 'resume', 'close']) {
      expect(await button(staff, action).isDisabled(), action).to.equal(true);
    }
    // A row picks the charted event.
    await cell(staff, 'event').click();
    expect(await page.getAttribute('#chart', 'data-coupon-id')).to.equal(String(staff));
    expect(await page.textContent('#chart-title')).to.contain('Staff pre-sale');

    await page.click('#sign-out');
    expect(await page.isVisible('#sign-in-form')).to.equal(true);
    expect(await page.isHidden('#board')).to.equal(true);
    expect(await page.evaluate('sessionStorage.length')).to.equal(0);
    expectSelfContained();
  });

  it('when an action is refused (the event closed since the page last looked), then the page says why and shows the event as it is', async () => {
    const couponId = await createCoupon(h.baseUrl, {
      name: 'Midnight flash sale',
      totalQuantity: 5,
    });
    let open = 0;
    page.on('request', () => (open += 1));
    page.on('requestfinished', () => (open -= 1));
    page.on('requestfailed', () => (open -= 1));
    await page.clock.install();
    await signIn(ADMIN_TOKEN);
    await eventually('the open event', async () =>
      (await shown(couponId, 'status')) === 'OPEN' ? true : undefined,
    );
    // The page's clock stops, so it polls no more; then the event closes behind its back.
    await page.clock.pauseAt(Date.now() + 60_000);
    await eventually('no request under way', async () => (open === 0 ? true : undefined));
    const closed = await http(h.baseUrl, 'POST', `/coupons/${couponId}/close`, { admin: true });
    expect(closed.status).to.equal(200);
    expect(await shown(couponId, 'status')).to.equal('OPEN');

    await button(couponId, 'pause').click();

    await eventually('the refusal on the page', async () =>
      (await shown(couponId, 'status')) === 'CLOSED' ? true : undefined,
    );
    const notice = (await page.textContent('#notice')) ?? '';
    expect(notice).to.contain(`Could not pause event #${couponId}`).and.contain('EVENT_FINISHED');
    expect(await page.getAttribute('#notice', 'class')).to.contain('failed');
    expect((await dbCoupon(couponId))?.paused_at).to.equal(null);
    expect(await paused(couponId)).to.not.equal('1');
    expectSelfContained();
  });

  it('when a load runs, then the page shows the numbers move; pause stops the draining (page, Redis and PostgreSQL agree), and after resume the event sells out', async () => {
    const STOCK = 3_000;
    const couponId = await createCoupon(h.baseUrl, { name: 'Launch day', totalQuantity: STOCK });
    const navigations: string[] = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations.push(frame.url());
    });
    await signIn(ADMIN_TOKEN);
    await page.waitForSelector(`tr[data-coupon-id="${couponId}"]`);
    await nextPolls(1);
    expect(await shown(couponId, 'issued')).to.equal('0');
    // The newest live event is the one charted.
    expect(await page.getAttribute('#chart', 'data-coupon-id')).to.equal(String(couponId));

    // 1. A first wave with the worker draining: the page's figures move without a reload.
    h.container.worker.start();
    const first = startLoad(
      h.baseUrl,
      couponId,
      Array.from({ length: 1_200 }, (_, i) => `early-${i}`),
    );
    // What the page showed before the load: the first of the values it moves through.
    const seenIssued: number[] = [0];
    await eventually('the first wave issued on the page', async () => {
      const issued = await shownNumber(couponId, 'issued');
      if (seenIssued.at(-1) !== issued) seenIssued.push(issued);
      return issued === 1_200 ? true : undefined;
    });
    await first.done;
    expect(first.accepted.size).to.equal(1_200);
    expect([...seenIssued].sort((a, b) => a - b)).to.deep.equal(seenIssued);
    expect(navigations).to.have.length(1);
    expect(Number(await page.getAttribute('#chart', 'data-peak-accepted'))).to.be.greaterThan(0);
    expect(Number(await page.getAttribute('#chart', 'data-peak-issued'))).to.be.greaterThan(0);
    expect((await couponState(h.container, couponId)).issuedRows).to.have.length(1_200);

    // 2. The worker stops (as in a deploy); a second wave queues up.
    await h.container.worker.stop();
    const second = startLoad(
      h.baseUrl,
      couponId,
      Array.from({ length: 2_400 }, (_, i) => `late-${i}`),
    );
    await eventually('a queue on the page', async () =>
      (await shownNumber(couponId, 'queued')) >= 300 ? true : undefined,
    );

    // 3. Pause from the page, then a worker starts: it takes nothing while paused.
    await button(couponId, 'pause').click();
    await eventually('the paused event on the page', async () =>
      (await shown(couponId, 'status')) === 'PAUSED' ? true : undefined,
    );
    expect(await paused(couponId)).to.equal('1');
    expect((await dbCoupon(couponId))?.paused_at).to.be.instanceOf(Date);
    const worker = await startHarness({
      databaseUrl: h.databaseUrl,
      prefix: h.prefix,
      heartbeat: false,
    });
    try {
      worker.container.worker.start();
      const atPause = await couponState(h.container, couponId);
      expect(atPause.queued).to.be.greaterThan(0);
      expect(await worker.container.worker.drainOnce()).to.equal(0);
      const onPage: [number, number][] = [];
      for (let i = 0; i < 3; i += 1) {
        await nextPolls(1);
        onPage.push([await shownNumber(couponId, 'issued'), await shownNumber(couponId, 'queued')]);
      }
      expect(onPage).to.deep.equal(Array(3).fill([1_200, atPause.queued]));
      const stillPaused = await couponState(h.container, couponId);
      expect([
        stillPaused.issuedRows.length,
        stillPaused.queued,
        stillPaused.inflight,
      ]).to.deep.equal([1_200, atPause.queued, 0]);
      await eventually('the answers to the requests queued before the pause', async () =>
        second.accepted.size === atPause.queued ? true : undefined,
      );

      // 4. Resume from the page: the queue drains, the waiting clients get in, the event sells out.
      await button(couponId, 'resume').click();
      await eventually(
        'the sold-out event on the page',
        async () => ((await shown(couponId, 'status')) === 'SOLD_OUT' ? true : undefined),
        60_000,
      );
      await second.done;
      const accepted = first.accepted.size + second.accepted.size;
      await eventually(
        'every accepted request decided, on the page',
        async () => {
          const decided =
            (await shownNumber(couponId, 'issued')) + (await shownNumber(couponId, 'rejected'));
          return decided === accepted ? true : undefined;
        },
        60_000,
      );
      expect(await shownNumber(couponId, 'issued')).to.equal(STOCK);
      expect(await shown(couponId, 'remaining')).to.equal('0');
      if (SCREENSHOT) {
        mkdirSync(dirname(SCREENSHOT), { recursive: true });
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
      }

      const final = await couponState(h.container, couponId);
      expect(final.issuedCount).to.equal(STOCK);
      expect(final.issuedRows).to.have.length(STOCK);
      expect(new Set(final.issuedRows.map((r) => r.userId)).size).to.equal(STOCK);
      const byRequest = new Map(final.requestRows.map((r) => [r.requestId, r]));
      const acceptedIds = [...first.accepted.values(), ...second.accepted.values()];
      expect(acceptedIds.filter((id) => byRequest.get(id) === undefined)).to.deep.equal([]);
      expect(final.requestRows).to.have.length(accepted);
      expect(final.requestRows.filter((r) => r.status === 'ISSUED')).to.have.length(STOCK);
      expect(
        final.requestRows.filter((r) => r.status === 'REJECTED' && r.reason !== 'SOLD_OUT'),
      ).to.deep.equal([]);
      expect([final.queued, final.inflight]).to.deep.equal([0, 0]);
      // Late users the gate refused once the stock was spoken for: nothing else.
      expect([...second.refused.keys()].filter((code) => code !== 'SOLD_OUT')).to.deep.equal([]);
      expect(navigations).to.have.length(1);
      expectSelfContained();
    } finally {
      await worker.container.worker.stop();
      await worker.cleanup();
    }
  });
});
