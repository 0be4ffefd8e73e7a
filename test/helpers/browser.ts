/// <reference lib="dom" />
/**
 * The browser tests' set-up: the app served on a loopback port, and Debian's Chromium (CHROMIUM_PATH, default
 * /usr/bin/chromium) driven by puppeteer-core with one page that records what the tests assert on — console
 * errors, answers of 400 and above, and any request to another origin.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Fails at once (before a test's slow set-up) on a machine without Chromium, and makes the screenshots' folder. */
export async function requireChromium(shots: string): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);
  await mkdir(shots, { recursive: true });
}

export async function serveOnLoopback(
  fetch: (request: Request) => Response | Promise<Response>,
): Promise<{ server: ServerType; base: string }> {
  const server = serve({ fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export interface ChromiumPage {
  browser: Browser;
  page: Page;
  /** Errors the page logged or threw (a refused request's "Failed to load resource" is left to failedResponses). */
  consoleErrors: string[];
  /** `METHOD /path status` of each answer of 400 and above. */
  failedResponses: string[];
  /** Requests to anything but `base` (data: URLs aside). */
  foreignRequests: string[];
  /** A full-page screenshot into the shots folder. */
  shot(name: string): Promise<unknown>;
  /** The visible text of the first element matching `selector`, trimmed. */
  text(selector: string): Promise<string>;
}

/** Chromium, headless, with one 1280×900 page whose dialogs are accepted. */
export async function openChromium(base: string, shots: string): Promise<ChromiumPage> {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const ui: ChromiumPage = {
    browser,
    page,
    consoleErrors: [],
    failedResponses: [],
    foreignRequests: [],
    shot: (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true }),
    text: (selector) => page.$eval(selector, (e) => (e as HTMLElement).innerText.trim()),
  };
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) ui.consoleErrors.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400)
      ui.failedResponses.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
  });
  page.on('pageerror', (e) => ui.consoleErrors.push(String(e)));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.origin !== base) ui.foreignRequests.push(r.url());
  });
  page.on('dialog', (d) => void d.accept());
  return ui;
}
