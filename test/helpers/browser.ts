/**
 * Headless Chromium for end-to-end tests: Debian's /usr/bin/chromium driven by
 * playwright-core (no browser download). Installed by `.ci/run`; locally:
 * `apt-get install -y chromium`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const ROOT = path.resolve(__dirname, '..', '..');
export const OUTPUT_DIR = path.join(ROOT, 'test-output');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Builds web/dist when it is missing or older than web/ (see scripts/build-web.mjs). */
export function ensureWebClientBuilt(): void {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-web.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the web client failed:\n${r.stdout}\n${r.stderr}`);
}

export interface TestBrowser {
  browser: Browser;
  /** Uncaught errors of every page so far. */
  pageErrors: string[];
  /** A separate "person": own cookies and storage; desktop-sized unless a viewport is given. */
  newUser(options?: { viewport?: { width: number; height: number }; mobile?: boolean }): Promise<{
    context: BrowserContext;
    page: Page;
  }>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // The machine's network is closed: background traffic (updates, sync, QUIC probes) is
    // refused and slows Chromium down, so it is all switched off.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    // (playwright gives each launch a fresh, empty --user-data-dir of its own)
  });
  const pageErrors: string[] = [];
  return {
    browser,
    pageErrors,
    async newUser(options = {}) {
      const context = await browser.newContext({
        viewport: options.viewport ?? { width: 1100, height: 720 },
        ...(options.mobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
        locale: 'en-GB',
        timezoneId: 'UTC',
      });
      const page = await context.newPage();
      // Waits are for things that happen within a second or two; fail with a screenshot soon.
      page.setDefaultTimeout(10_000);
      // Uncaught errors and unhandled rejections in the page are bugs: collected for a check.
      page.on('pageerror', (err) => pageErrors.push(`${err.name}: ${err.message}\n${err.stack ?? ''}`));
      return { context, page };
    },
    async close() {
      await browser.close();
    },
  };
}

/** Saves a PNG of each page into test-output/ (named `<prefix>-<name>.png`); never throws. */
export async function screenshots(prefix: string, pages: Record<string, Page | undefined>): Promise<string[]> {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const saved: string[] = [];
  for (const [name, page] of Object.entries(pages)) {
    if (!page || page.isClosed()) continue;
    const file = path.join(OUTPUT_DIR, `${prefix}-${name}.png`.replace(/[^\w.-]+/g, '_'));
    try {
      await page.screenshot({ path: file, fullPage: true });
      saved.push(file);
    } catch {
      // The page may be gone (browser crash): the test's own error says more.
    }
  }
  return saved;
}

/**
 * Runs a test body; on failure saves screenshots of every page first, then rethrows, so a
 * red test leaves pictures of what each window showed.
 */
export async function withScreenshots(
  name: string,
  pages: () => Record<string, Page | undefined>,
  body: () => Promise<void>,
): Promise<void> {
  try {
    await body();
  } catch (err) {
    const files = await screenshots(`FAILED-${name}`, pages());
    if (files.length) console.error(`screenshots of the failure:\n  ${files.join('\n  ')}`);
    throw err;
  }
}
