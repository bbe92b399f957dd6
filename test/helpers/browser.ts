// A real browser for dashboard tests: Debian's chromium (installed by .ci/run) driven by
// playwright-core. Without one, tests skip with the reason printed; with CI=true a missing
// browser fails the run instead.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"];

/** The browser's path, or why there is none. */
export function findChromium(): { path: string } | { missing: string } {
  const fromEnv = process.env["ZMGMT_CHROMIUM"];
  if (fromEnv !== undefined && fromEnv !== "") {
    return existsSync(fromEnv) ? { path: fromEnv } : { missing: `ZMGMT_CHROMIUM=${fromEnv} does not exist` };
  }
  for (const path of CANDIDATES) {
    if (!existsSync(path)) continue;
    const probe = spawnSync(path, ["--version"], { encoding: "utf8", timeout: 30_000 });
    if (probe.status === 0) return { path };
    return { missing: `${path} does not run: ${probe.error?.message ?? probe.stderr.trim()}` };
  }
  return { missing: "no chromium found (apt-get install chromium, or set ZMGMT_CHROMIUM)" };
}

export const browserFound = findChromium();
export const browserMissing = "missing" in browserFound ? browserFound.missing : undefined;
if (browserMissing !== undefined && process.env["CI"] === "true") throw new Error(`${browserMissing}, but CI=true`);
if (browserMissing !== undefined) console.warn(`skipping browser tests: ${browserMissing}`);

export async function launchBrowser(): Promise<Browser> {
  if (!("path" in browserFound)) throw new Error(browserFound.missing);
  return chromium.launch({
    executablePath: browserFound.path,
    // Tests run as root in CI, where Chromium's sandbox refuses to start.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
    timeout: 30_000,
  });
}
