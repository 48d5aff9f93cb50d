/**
 * Headless Chromium for browser tests: Debian's `chromium` package (installed by `.ci/run` when missing; Playwright's
 * own browser download cannot run here) driven by `playwright-core`. Flags keep it off the network: without the
 * background-networking switches Chromium keeps dialling Google's hosts, which this machine refuses.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext } from "playwright-core";

const CANDIDATES = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The Chromium binary, or undefined (with the reason in `chromiumMissing()`). */
export function chromiumPath(): string | undefined {
  return CANDIDATES.find((candidate): candidate is string => Boolean(candidate) && existsSync(candidate!));
}

export function chromiumMissing(): string {
  return "Chromium is not installed: run `apt-get install chromium` (Debian) or set CHROMIUM_PATH; .ci/run installs it.";
}

export interface LaunchedBrowser {
  browser: Browser;
  /** A fresh context (own cookies and storage) with the given viewport and locale. */
  context(options?: { viewport?: { width: number; height: number }; locale?: string; isMobile?: boolean; hasTouch?: boolean }): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<LaunchedBrowser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error(chromiumMissing());
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  return {
    browser,
    context: (options = {}) => browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 900 }, locale: options.locale ?? "en-US", isMobile: options.isMobile, hasTouch: options.hasTouch }),
    close: async () => {
      await browser.close();
    },
  };
}
