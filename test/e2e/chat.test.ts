/**
 * The web client end to end, as two people use it: two Chromium browser contexts (separate
 * cookie jars) against a real server that serves the built client at `/` next to the API.
 * Every wait is on a DOM condition; a failing test leaves screenshots of both windows in
 * test-output/.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Locator, Page, WebSocketRoute } from 'playwright-core';
import { TestClient } from '../helpers/client';
import {
  OUTPUT_DIR,
  ROOT,
  ensureWebClientBuilt,
  launchBrowser,
  screenshots,
  withScreenshots,
  type TestBrowser,
} from '../helpers/browser';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const SEND = 'mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
const SEEDED = 40;

interface Person {
  page: Page;
  id: string;
  name: string;
}

let server: TestServer;
let browser: TestBrowser;
let origin: string;
let alice: Person;
let bob: Person;

const pages = () => ({ alice: alice?.page, bob: bob?.page });
const step = (name: string, body: () => Promise<void>) =>
  test(name, () => withScreenshots(name.slice(0, 60), pages, body));

/** Exact text of one element (React escapes it: markup in a message stays text). */
const exact = (text: string) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
const messageText = (page: Page, text: string): Locator =>
  page.getByTestId('message-text').filter({ hasText: exact(text) });
const messageTexts = (page: Page) => page.getByTestId('message-text').allTextContents();

const waitUntil = (what: string, check: () => Promise<boolean>, timeout = 10_000): Promise<void> =>
  waitFor(check, { timeout, interval: 50, what });

async function open(page: Page): Promise<{ id: string; name: string }> {
  await page.goto(`${origin}/`);
  const me = page.getByTestId('online-me');
  await me.waitFor();
  await page.locator('[data-testid="connection"][data-state="connected"]').waitFor();
  return { id: (await me.getAttribute('data-user-id'))!, name: (await page.getByTestId('me-name').textContent())! };
}

async function send(page: Page, text: string): Promise<void> {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

/** Scrolls the message list to its top, as a reader looking for older messages does. */
async function scrollToTop(page: Page): Promise<void> {
  await page.getByTestId('messages').evaluate((el) => {
    el.scrollTop = 0;
    el.dispatchEvent(new Event('scroll'));
  });
}

beforeAll(async () => {
  ensureWebClientBuilt();
  server = await startServer();
  origin = server.url.replace(/\/graphql$/, '');
  // History older than one page, from a third identity that is not online.
  const seeder = new TestClient(server);
  await seeder.me();
  for (let i = 1; i <= SEEDED; i++) await seeder.data(SEND, { input: { text: `history ${i}` } });
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the web client in Chromium, two people', () => {
  step('is served at / next to the API, and each browser gets its own anonymous identity', async () => {
    const a = await browser.newUser();
    const b = await browser.newUser();
    alice = { page: a.page, ...(await open(a.page)) };
    bob = { page: b.page, ...(await open(b.page)) };
    expect(alice.id).toMatch(/^[0-9a-f]{24}$/);
    expect(bob.id).not.toBe(alice.id);
    expect(bob.name).not.toBe(alice.name);
    const [cookie] = (await a.context.cookies()).filter((c) => c.name === 'anonymo.sid');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    // The avatar is this server's SVG.
    const src = await a.page.locator('.identity img.avatar').getAttribute('src');
    const avatar = await fetch(new URL(src!, origin));
    expect(avatar.headers.get('content-type')).toContain('image/svg+xml');
  });

  step('each sees the other online', async () => {
    await alice.page.locator(`[data-testid="online-user"][data-user-id="${bob.id}"]`).waitFor();
    await bob.page.locator(`[data-testid="online-user"][data-user-id="${alice.id}"]`).waitFor();
    expect(await alice.page.locator(`[data-testid="online-user"][data-user-id="${alice.id}"]`).count()).toBe(0);
  });

  step('older lobby history loads when scrolling up, in order', async () => {
    const { page } = alice;
    await messageText(page, `history ${SEEDED}`).waitFor();
    expect(await messageText(page, 'history 1').count()).toBe(0);
    await scrollToTop(page);
    await messageText(page, 'history 1').waitFor();
    const texts = (await messageTexts(page)).filter((t) => t.startsWith('history '));
    expect(texts).toEqual(Array.from({ length: SEEDED }, (_, i) => `history ${i + 1}`));
    await page.getByText('The beginning of this conversation.').waitFor();
  });

  step('lobby messages arrive live in the other window, as text', async () => {
    const hello = 'Hello from Alice <b>not bold</b> & co';
    await send(alice.page, hello);
    await messageText(bob.page, hello).waitFor();
    expect(await bob.page.locator('[data-testid="message-text"] b').count()).toBe(0);
    const mine = alice.page
      .locator('[data-testid="message"][data-mine="true"]')
      .filter({ has: messageText(alice.page, hello) });
    await mine.waitFor();
    // A timestamp from the server.
    expect(await mine.locator('time').getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);

    await send(bob.page, 'Hi Alice, Bob here');
    await messageText(alice.page, 'Hi Alice, Bob here').waitFor();
    expect(await messageText(alice.page, hello).count()).toBe(1);
  });

  step('typing shows in the other window and stops when the text is cleared', async () => {
    const typing = alice.page.getByTestId('typing');
    await bob.page.getByTestId('composer').fill('I am writing some');
    await typing.filter({ hasText: `${bob.name} is typing…` }).waitFor();
    await bob.page.getByTestId('composer').fill('');
    await typing.filter({ hasText: exact('') }).waitFor();
    expect(await bob.page.getByTestId('typing').textContent()).toBe('');
  });

  step('a direct message: private, live, unread until opened, then "Seen" for the sender', async () => {
    await alice.page.locator(`[data-testid="online-user"][data-user-id="${bob.id}"]`).click();
    await alice.page.locator(`[data-testid="conversation-view"][data-peer="${bob.id}"]`).waitFor();
    await alice.page.getByTestId('peer-name').filter({ hasText: bob.name }).waitFor();
    await send(alice.page, 'Hi Bob, just between us');
    await alice.page.getByTestId('sent').waitFor();

    // Bob is in the lobby: the conversation appears with one unread message.
    const entry = bob.page.locator(`[data-testid="conversation"][data-user-id="${alice.id}"]`);
    await entry
      .getByTestId('unread')
      .filter({ hasText: exact('1') })
      .waitFor();
    await entry.filter({ hasText: 'Hi Bob, just between us' }).waitFor();
    expect(await messageText(bob.page, 'Hi Bob, just between us').count()).toBe(0);

    await entry.click();
    await messageText(bob.page, 'Hi Bob, just between us').waitFor();
    await entry.getByTestId('unread').waitFor({ state: 'detached' });
    await alice.page.getByTestId('seen').waitFor();

    // Typing and replies in the direct conversation, live both ways.
    await bob.page.getByTestId('composer').fill('Sure');
    await alice.page
      .getByTestId('typing')
      .filter({ hasText: `${bob.name} is typing…` })
      .waitFor();
    await send(bob.page, 'Sure, only you and me');
    await messageText(alice.page, 'Sure, only you and me').waitFor();
    await alice.page
      .getByTestId('typing')
      .filter({ hasText: exact('') })
      .waitFor();
    // Alice has the conversation open: Bob's reply is read at once, so Bob sees "Seen".
    await bob.page.getByTestId('seen').waitFor();

    await saveReadmeScreenshot();
  });

  step('"Seen" stays when the sender\'s own sendMessage answer arrives after the read receipt', async () => {
    // Hold Bob's HTTP answer to sendMessage until Alice has read the message and Bob has the
    // receipt (over the WebSocket), then let it through: it still says readAt: null.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await bob.page.route(/\/graphql$/, async (route) => {
      if (!/"operationName":"SendMessage"/.test(route.request().postData() ?? '')) return route.fallback();
      const response = await route.fetch();
      await held;
      await route.fulfill({ response });
    });
    try {
      await send(bob.page, 'a late answer');
      await messageText(alice.page, 'a late answer').waitFor();
      const message = bob.page
        .locator('[data-testid="message"]')
        .filter({ has: messageText(bob.page, 'a late answer') });
      await message.getByTestId('seen').waitFor();
      const refreshed = bob.page.waitForResponse((r) =>
        /"operationName":"Conversations"/.test(r.request().postData() ?? ''),
      );
      release();
      // The client refetches the conversation list once the answer is in the cache.
      await refreshed;
      expect(await message.getByTestId('seen').count()).toBe(1);
      expect(await message.getByTestId('sent').count()).toBe(0);
    } finally {
      release();
      await bob.page.unrouteAll({ behavior: 'ignoreErrors' });
    }
  });

  step('after a reload both find their identity, the open conversation and its history', async () => {
    for (const person of [alice, bob]) {
      await person.page.reload();
      await person.page.getByTestId('online-me').waitFor();
      expect(await person.page.getByTestId('me-name').textContent()).toBe(person.name);
      const other = person === alice ? bob : alice;
      await person.page.locator(`[data-testid="conversation-view"][data-peer="${other.id}"]`).waitFor();
      await messageText(person.page, 'Hi Bob, just between us').waitFor();
      await messageText(person.page, 'Sure, only you and me').waitFor();
      // Read status comes back from history (readAt).
      await person.page.getByTestId('seen').waitFor();
    }
    await alice.page.getByTestId('open-lobby').click();
    await messageText(alice.page, 'Hello from Alice <b>not bold</b> & co').waitFor();
  });

  step('a dropped WebSocket resumes with `after`: messages sent meanwhile arrive once, in order', async () => {
    const { page } = alice;
    let blocked = false;
    const routes: WebSocketRoute[] = [];
    /** What the page sent, per connection. */
    const sent: string[][] = [];
    await page.routeWebSocket(/\/graphql$/, (ws) => {
      if (blocked) return ws.close({ code: 1013, reason: 'blocked by the test' });
      routes.push(ws);
      const frames: string[] = [];
      sent.push(frames);
      const upstream = ws.connectToServer();
      ws.onMessage((message) => {
        frames.push(String(message));
        upstream.send(message);
      });
    });
    // The route applies to sockets opened from now on.
    await page.goto(`${origin}/#/`);
    await page.reload();
    await page.locator(`[data-testid="conversation-view"][data-peer="lobby"]`).waitFor();
    await page.locator('[data-testid="connection"][data-state="connected"]').waitFor();
    await messageText(page, 'Hello from Alice <b>not bold</b> & co').waitFor();
    expect(routes.length).toBeGreaterThan(0);
    const newestBefore = await page.getByTestId('message').last().getAttribute('data-id');

    blocked = true;
    for (const ws of routes.splice(0)) await ws.close({ code: 4499, reason: 'dropped by the test' });
    await page.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor();

    const missed = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
    await bob.page.getByTestId('open-lobby').click();
    for (const text of missed) {
      await send(bob.page, text);
      await messageText(bob.page, text).waitFor();
    }
    expect(await messageText(page, missed[0]).count()).toBe(0);

    blocked = false;
    await page.locator('[data-testid="connection"][data-state="connected"]').waitFor({ timeout: 20_000 });
    await messageText(page, missed[2]).waitFor();
    const texts = await messageTexts(page);
    expect(texts.filter((t) => missed.includes(t))).toEqual(missed);
    // The new connection re-subscribed after the newest message seen before the drop.
    const resubscribed = sent
      .at(-1)!
      .map((f) => JSON.parse(f))
      .find((f) => f.type === 'subscribe' && f.payload.operationName === 'MessageAdded');
    expect(resubscribed.payload.variables).toEqual({ after: newestBefore });
    // And live again afterwards.
    await send(bob.page, 'back to normal');
    await messageText(page, 'back to normal').waitFor();
    await page.unrouteAll({ behavior: 'ignoreErrors' });
  });

  step('edit, react, reply, delete and disappearing messages: the other window sees each live', async () => {
    await alice.page.locator(`[data-testid="online-user"][data-user-id="${bob.id}"]`).click();
    await alice.page.locator(`[data-testid="conversation-view"][data-peer="${bob.id}"]`).waitFor();
    await bob.page.locator(`[data-testid="online-user"][data-user-id="${alice.id}"]`).click();
    await bob.page.locator(`[data-testid="conversation-view"][data-peer="${alice.id}"]`).waitFor();
    const item = (page: Page, text: string) =>
      page.locator('[data-testid="message"]').filter({ has: messageText(page, text) });
    await send(alice.page, 'a tpyo here');
    await messageText(bob.page, 'a tpyo here').waitFor();

    // Inline edit: Bob sees the new text with the "edited" mark.
    await item(alice.page, 'a tpyo here').getByTestId('edit').click();
    await alice.page.getByTestId('edit-input').fill('a typo here, fixed');
    await alice.page.getByTestId('edit-input').press('Enter');
    await item(bob.page, 'a typo here, fixed').getByTestId('edited').waitFor();
    const id = (await item(bob.page, 'a typo here, fixed').getAttribute('data-id'))!;

    // A reaction from Bob: Alice sees the count, Bob sees it as his.
    await item(bob.page, 'a typo here, fixed').getByTestId('react-open').click();
    await bob.page.locator('[data-testid="pick"][data-emoji="🎉"]').click();
    const aliceSees = alice.page.locator(`[data-testid="message"][data-id="${id}"] [data-testid="reaction"]`);
    await aliceSees.filter({ hasText: '🎉 1' }).waitFor();
    expect(await aliceSees.getAttribute('data-mine')).toBe('false');
    await bob.page
      .locator(`[data-testid="message"][data-id="${id}"] [data-testid="reaction"][data-mine="true"]`)
      .waitFor();

    // A reply with a quoted preview; clicking the quote goes to the original.
    await item(bob.page, 'a typo here, fixed').getByTestId('reply').click();
    await bob.page.getByTestId('replying').filter({ hasText: 'a typo here, fixed' }).waitFor();
    await send(bob.page, 'replying to that');
    const reply = item(alice.page, 'replying to that');
    await reply.getByTestId('reply-quote').filter({ hasText: 'a typo here, fixed' }).waitFor();
    await reply.getByTestId('reply-quote').click();
    await alice.page.locator(`[data-testid="message"][data-id="${id}"].flash`).waitFor();

    // Deletion: a tombstone for Bob, and the reply's quote says so.
    alice.page.once('dialog', (d) => void d.accept());
    await alice.page.locator(`[data-testid="message"][data-id="${id}"]`).getByTestId('delete').click();
    await bob.page.locator(`[data-testid="message"][data-id="${id}"] [data-testid="message-deleted"]`).waitFor();
    await item(bob.page, 'replying to that')
      .getByTestId('reply-quote')
      .filter({ hasText: 'message deleted' })
      .waitFor();
    expect(await messageText(bob.page, 'a typo here, fixed').count()).toBe(0);

    // Disappearing messages: Alice sets a timer; her next message carries it on both sides.
    await alice.page.getByTestId('ttl-select').selectOption('3600');
    // The select shows the server's setting (it reverts while the mutation runs): sending before
    // the server has it would send an ordinary message.
    await waitUntil(
      'the server confirms the timer',
      async () =>
        (await alice.page.getByTestId('ttl-select').inputValue()) === '3600' &&
        (await alice.page.getByTestId('ttl-select').isEnabled()),
    );
    await send(alice.page, 'this one disappears');
    await item(bob.page, 'this one disappears').getByTestId('expires').waitFor();
    await waitUntil(
      'Bob sees the timer setting',
      async () => (await bob.page.getByTestId('ttl-select').inputValue()) === '3600',
    );
    await alice.page.getByTestId('open-lobby').click();
  });

  step('"New identity" starts over as someone else, who can chat at once', async () => {
    const { page } = bob;
    await page.getByTestId('new-identity').click();
    await waitUntil('the name changes', async () => (await page.getByTestId('me-name').textContent()) !== bob.name);
    const fresh = await page.getByTestId('online-me').getAttribute('data-user-id');
    expect(fresh).not.toBe(bob.id);
    await page.locator('[data-testid="connection"][data-state="connected"]').waitFor();
    // A new person has no conversations.
    expect(await page.getByTestId('conversation').count()).toBe(0);
    const newName = (await page.getByTestId('me-name').textContent())!;
    await send(page, 'I am someone new');
    const seenByAlice = alice.page
      .locator('[data-testid="message"]')
      .filter({ has: messageText(alice.page, 'I am someone new') });
    await seenByAlice.filter({ hasText: newName }).waitFor();
    await alice.page.locator(`[data-testid="online-user"][data-user-id="${fresh}"]`).waitFor();
  });

  step('"Forget me" (after confirming) erases what was sent and starts a new identity', async () => {
    const { page } = bob;
    const before = await page.getByTestId('online-me').getAttribute('data-user-id');
    const name = (await page.getByTestId('me-name').textContent())!;
    page.once('dialog', (d) => void d.accept());
    await page.getByTestId('forget-me').click();
    await waitUntil('a new identity', async () => (await page.getByTestId('me-name').textContent()) !== name);
    expect(await page.getByTestId('online-me').getAttribute('data-user-id')).not.toBe(before);
    // Alice, in the lobby, sees the message of the erased identity become a tombstone, live.
    await alice.page.getByTestId('open-lobby').click();
    await waitUntil('the tombstone', async () => (await messageText(alice.page, 'I am someone new').count()) === 0);
    await alice.page.getByTestId('message-deleted').first().waitFor();
  });

  test('neither page had an uncaught error or unhandled rejection', () => {
    expect(browser.pageErrors).toEqual([]);
  });
});

/**
 * Both windows side by side in one picture (test-output/two-users.png); with
 * UPDATE_SCREENSHOT=1 also docs/screenshot.png, the README's picture.
 */
async function saveReadmeScreenshot(): Promise<void> {
  const [a, b] = await Promise.all([alice.page.screenshot(), bob.page.screenshot()]);
  const canvas = await browser.browser.newPage({ viewport: { width: 2220, height: 740 } });
  try {
    await canvas.setContent(
      `<body style="margin:0;background:#8a8f98;display:flex;gap:20px;padding:10px">` +
        `<img src="data:image/png;base64,${a.toString('base64')}"><img src="data:image/png;base64,${b.toString('base64')}"></body>`,
    );
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const file = path.join(OUTPUT_DIR, 'two-users.png');
    await canvas.screenshot({ path: file });
    if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync(file, path.join(ROOT, 'docs', 'screenshot.png'));
  } finally {
    await canvas.close();
  }
  await screenshots('two-users', pages());
}
