/**
 * Rooms and "talk to a stranger" in the web client, end to end in Chromium, at a phone
 * viewport (390×844: the sidebar is a drawer) and a desktop one: a private room created,
 * its invite link opened and joined by a second person, chat (an edit, a reaction and a reply
 * seen live by the other member), leave; two strangers with a
 * shared interest paired, chatting, one pressing Next, the other told they left. Nothing may
 * scroll sideways at either size.
 */
import type { Page } from 'playwright-core';
import { ensureWebClientBuilt, launchBrowser, withScreenshots, type TestBrowser } from '../helpers/browser';
import { startServer, type TestServer } from '../helpers/server';

jest.setTimeout(60_000);

interface Person {
  page: Page;
  id: string;
  name: string;
}

const VIEWPORTS = [
  { label: 'phone', viewport: { width: 390, height: 844 }, mobile: true },
  { label: 'desktop', viewport: { width: 1100, height: 720 }, mobile: false },
] as const;

let browser: TestBrowser;
beforeAll(async () => {
  ensureWebClientBuilt();
  browser = await launchBrowser();
}, 120_000);
afterAll(async () => {
  await browser?.close();
});

const exact = (text: string) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
const messageText = (page: Page, text: string) => page.getByTestId('message-text').filter({ hasText: exact(text) });

async function send(page: Page, text: string): Promise<void> {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

/** Nothing on the page is wider than the viewport. */
async function expectNoHorizontalOverflow(page: Page): Promise<void> {
  // (A string: this file is compiled without the DOM library.)
  const { scrollWidth, innerWidth } = await page.evaluate<{ scrollWidth: number; innerWidth: number }>(
    '({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })',
  );
  expect(scrollWidth).toBeLessThanOrEqual(innerWidth);
}

describe.each(VIEWPORTS)('rooms and strangers in Chromium at $label size', ({ label, viewport, mobile }) => {
  let server: TestServer;
  let origin: string;
  let alice: Person;
  let bob: Person;
  const pages = () => ({ alice: alice?.page, bob: bob?.page });
  const step = (name: string, body: () => Promise<void>) =>
    test(name, () => withScreenshots(`${label}-${name.slice(0, 50)}`, pages, body));

  /** Opens a sidebar entry: on a phone through the drawer (☰). */
  async function navigate(page: Page, testId: string): Promise<void> {
    if (mobile) {
      await page.getByTestId('menu').click();
      await page.locator('.sidebar.open').waitFor();
    }
    await page.getByTestId(testId).click();
    if (mobile) await page.locator('.sidebar.open').waitFor({ state: 'detached' });
  }

  async function person(): Promise<Person> {
    const { page } = await browser.newUser({ viewport, mobile });
    await page.goto(`${origin}/`);
    const me = page.getByTestId('online-me');
    await me.waitFor({ state: 'attached' });
    await page.locator('[data-testid="connection"][data-state="connected"]').waitFor({ state: 'attached' });
    return {
      page,
      id: (await me.getAttribute('data-user-id'))!,
      name: (await page.getByTestId('me-name').textContent())!,
    };
  }

  beforeAll(async () => {
    server = await startServer({ env: { STRANGER_ANY_AFTER_MS: '60000' } });
    origin = server.url.replace(/\/graphql$/, '');
    alice = await person();
    bob = await person();
  });
  afterAll(async () => {
    await alice?.page.context().close();
    await bob?.page.context().close();
    await server?.close();
  });

  step('the lobby fits the screen: nothing scrolls sideways, the composer is reachable', async () => {
    const long = `a-very-long-word-without-spaces-${'x'.repeat(120)}`;
    await send(alice.page, long);
    await messageText(bob.page, long).waitFor();
    for (const p of [alice, bob]) {
      await expectNoHorizontalOverflow(p.page);
      const box = await p.page.getByTestId('send').boundingBox();
      expect(box).not.toBeNull();
      expect(box!.x + box!.width).toBeLessThanOrEqual(viewport.width);
      expect(box!.y + box!.height).toBeLessThanOrEqual(viewport.height);
    }
  });

  step('a private room: created, its invite link opened and joined by someone else, chat, leave', async () => {
    await navigate(alice.page, 'open-rooms');
    await alice.page.getByTestId('room-title-input').fill('Book club <b>night</b>');
    await alice.page.getByTestId('room-private').check();
    await alice.page.getByTestId('create-room').click();
    await alice.page.getByTestId('room-title').filter({ hasText: 'Book club <b>night</b>' }).waitFor();
    const link = await alice.page.getByTestId('invite-link').inputValue();
    expect(link).toMatch(new RegExp(`^${origin}/#/r/[A-Za-z0-9_-]{10,}$`));
    await expectNoHorizontalOverflow(alice.page);

    await bob.page.goto(link);
    await bob.page.getByTestId('join-room').click();
    await bob.page.getByTestId('composer').waitFor();
    await send(bob.page, 'Hello book club');
    await messageText(alice.page, 'Hello book club').waitFor();
    await send(alice.page, 'Welcome, Bob');
    await messageText(bob.page, 'Welcome, Bob').waitFor();
    await bob.page.getByTestId('room-counts').filter({ hasText: '2 members' }).waitFor();

    // The message actions work in a room as in the lobby: an edit and a reaction reach the
    // other member live, and a reply quotes its original.
    const item = (page: Page, text: string) =>
      page.locator('[data-testid="message"]').filter({ has: messageText(page, text) });
    await item(bob.page, 'Hello book club').getByTestId('edit').click();
    await bob.page.getByTestId('edit-input').fill('Hello, book club!');
    await bob.page.getByTestId('edit-input').press('Enter');
    await item(alice.page, 'Hello, book club!').getByTestId('edited').waitFor();
    const id = (await item(alice.page, 'Hello, book club!').getAttribute('data-id'))!;
    await item(alice.page, 'Hello, book club!').getByTestId('react-open').click();
    await alice.page.locator('[data-testid="pick"][data-emoji="🎉"]').click();
    await bob.page
      .locator(`[data-testid="message"][data-id="${id}"] [data-testid="reaction"]`)
      .filter({ hasText: '🎉 1' })
      .waitFor();
    await item(alice.page, 'Hello, book club!').getByTestId('reply').click();
    await send(alice.page, 'Glad you came');
    await item(bob.page, 'Glad you came').getByTestId('reply-quote').filter({ hasText: 'Hello, book club!' }).waitFor();
    // Reporting too: a member may see the room's messages, so may report them.
    const welcome = item(bob.page, 'Welcome, Bob');
    await welcome.getByTestId('report-open').click();
    await welcome.locator('[data-testid="report-reason"][data-reason="SPAM"]').click();
    await welcome.getByTestId('reported').waitFor();
    for (const p of [alice, bob]) await expectNoHorizontalOverflow(p.page);
    const slug = link.split('/').pop()!;
    await bob.page.locator(`[data-testid="room-entry"][data-slug="${slug}"]`).waitFor({ state: 'attached' });

    await bob.page.getByTestId('leave-room').click();
    await bob.page.locator('[data-testid="conversation-view"][data-peer="lobby"]').waitFor();
    await bob.page.locator(`[data-testid="room-entry"][data-slug="${slug}"]`).waitFor({ state: 'detached' });
    // The invite still works for him; the room is no longer his until he joins again.
    await bob.page.goto(link);
    await bob.page.getByTestId('join-room').waitFor();
  });

  step('two strangers sharing an interest are paired and chat; Next tells the other they left', async () => {
    await navigate(alice.page, 'open-stranger');
    await alice.page.getByTestId('interests').fill('Jazz, chess');
    await alice.page.getByTestId('stranger-start').click();
    await alice.page.getByTestId('stranger-waiting').waitFor();
    await expectNoHorizontalOverflow(alice.page);

    await navigate(bob.page, 'open-stranger');
    await bob.page.getByTestId('interests').fill('hiking jazz');
    await bob.page.getByTestId('interests').press('Enter');
    await alice.page.getByTestId('stranger-title').filter({ hasText: bob.name }).waitFor();
    await bob.page.getByTestId('stranger-title').filter({ hasText: alice.name }).waitFor();
    await alice.page.getByTestId('shared-interests').filter({ hasText: 'jazz' }).waitFor();

    await send(alice.page, 'Hi stranger');
    await messageText(bob.page, 'Hi stranger').waitFor();
    // Shift+Enter breaks the line; Enter sends.
    await bob.page.getByTestId('composer').fill('first line');
    await bob.page.getByTestId('composer').press('Shift+Enter');
    await bob.page.getByTestId('composer').pressSequentially('second line');
    await bob.page.getByTestId('composer').press('Enter');
    await messageText(alice.page, 'first line\nsecond line').waitFor();
    for (const p of [alice, bob]) await expectNoHorizontalOverflow(p.page);

    await bob.page.getByTestId('stranger-next').click();
    await alice.page.getByTestId('stranger-left').filter({ hasText: bob.name }).waitFor();
    await expect(alice.page.getByTestId('composer').count()).resolves.toBe(0);
    await bob.page.getByTestId('stranger-waiting').waitFor();
    await expectNoHorizontalOverflow(alice.page);
    await bob.page.getByTestId('stranger-stop').click();
    await bob.page.locator('[data-testid="stranger-view"][data-state="idle"]').waitFor();
  });

  if (mobile) {
    step('the drawer opens with ☰ and closes with Escape; focus is visible', async () => {
      const { page } = alice;
      await page.getByTestId('menu').focus();
      await page.keyboard.press('Enter');
      await page.locator('.sidebar.open').waitFor();
      expect(await page.getByTestId('menu').getAttribute('aria-expanded')).toBe('true');
      await page.keyboard.press('Escape');
      await page.locator('.sidebar.open').waitFor({ state: 'detached' });
      await page.getByTestId('menu').focus();
      const outline = await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle');
      expect(outline).not.toBe('none');
    });
  }
});

test('no page had an uncaught error or unhandled rejection', () => {
  expect(browser.pageErrors).toEqual([]);
});
