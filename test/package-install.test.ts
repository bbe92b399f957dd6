// The package as npm ships it: `npm pack` builds it (prepack) and the tarball installs a
// working `zmgmt` command with everything it loads at run time (dist, the Zeek node script).
// The pack runs in a copy of the repository without dist/, so the tarball's dist can only
// come from the prepack build, and the dist/ other tests run against is left alone.

import { execFile, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
// Not copied: what the build makes, installs or reports, and version control.
const SKIP_TOP = new Set(["node_modules", "dist", ".git", ".zmgmt", "test-results.json", "test-results-chaos.json"]);

function npmAvailable(): string | undefined {
  const r = spawnSync("npm", ["--version"], { encoding: "utf8", timeout: 30_000 });
  return r.status === 0 ? undefined : `npm is not runnable here (${r.error?.message ?? `exit ${r.status}`})`;
}

const unavailable = npmAvailable();
// CI must run this test; anywhere else a missing npm is a reason to skip, said out loud.
if (unavailable && process.env["CI"] === "true") throw new Error(`${unavailable}, but CI=true`);
if (unavailable) console.warn(`skipping package-install tests: ${unavailable}`);

/** The environment without settings that would point the installed CLI elsewhere. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !(key.startsWith("ZEEK_CLIENT_") || key.startsWith("npm_lifecycle_") || key.startsWith("npm_package_")),
    ),
  );
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(unavailable !== undefined)("npm pack and install", () => {
  it("packs a built tarball whose installed zmgmt runs --help and show-settings", { timeout: 180_000 }, async () => {
    const work = mkdtempSync(join(tmpdir(), "zmgmt-pack-"));
    dirs.push(work);
    const src = join(work, "src-copy");
    const out = join(work, "out");
    const prefix = join(work, "prefix");
    for (const entry of readdirSync(ROOT)) {
      if (!SKIP_TOP.has(entry)) cpSync(join(ROOT, entry), join(src, entry), { recursive: true });
    }
    // The build needs the compiler and type packages; a link avoids copying them.
    symlinkSync(join(ROOT, "node_modules"), join(src, "node_modules"), "dir");
    mkdirSync(out);

    const env = cleanEnv();
    await run("npm", ["pack", "--pack-destination", out, "--no-audit", "--no-fund"], {
      cwd: src,
      env,
      timeout: 120_000,
      maxBuffer: 16 << 20,
    });
    const tarballs = readdirSync(out).filter((f) => f.endsWith(".tgz"));
    expect(tarballs).toHaveLength(1);
    const tarball = join(out, tarballs[0]!);

    const listing = (await run("tar", ["tzf", tarball], { timeout: 30_000 })).stdout.split("\n").filter(Boolean);
    for (const f of [
      "package/bin/zmgmt.js",
      "package/dist/cli/main.js",
      "package/dist/node/main.js",
      "package/zeek/zmgmt/node.zeek",
      "package/README.md",
      "package/contrib/systemd/zmgmt-controller.service",
      "package/contrib/systemd/zmgmt-agent.service",
      // The dashboard's page and the front-end library it loads, with no CDN to fall back on.
      "package/dist/controller/web/index.html",
      "package/dist/controller/web/app.js",
      "package/dist/controller/web/vendor/preact.mjs",
      "package/dist/controller/web/vendor/hooks.mjs",
      "package/dist/controller/web/vendor/htm.mjs",
    ]) {
      expect(listing).toContain(f);
    }
    // Development files stay out of the package.
    expect(listing.filter((f) => /^package\/(src|test|bench|node_modules)\//.test(f) || f.endsWith(".map"))).toEqual([]);

    // Dependencies come from npm's cache where it has them; the registry is asked only for
    // what is missing.
    await run("npm", ["install", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", "--no-save", tarball], {
      cwd: work,
      env,
      timeout: 120_000,
      maxBuffer: 16 << 20,
    });
    const zmgmt = join(prefix, "node_modules", ".bin", "zmgmt");
    expect(existsSync(zmgmt)).toBe(true);
    // The agent finds the Zeek node script relative to its own code.
    expect(existsSync(join(prefix, "node_modules", "zmgmt", "zeek", "zmgmt", "node.zeek"))).toBe(true);

    const help = await run(zmgmt, ["--help"], { cwd: work, env, timeout: 30_000 });
    expect(help.stdout).toMatch(/^Usage: zmgmt /);
    for (const cmd of ["controller", "agent", "up", "get-nodes", "deploy-config", "show-settings"])
      expect(help.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, "m"));

    const settings = await run(zmgmt, ["show-settings", "--controller", "192.0.2.7:2150"], { cwd: work, env, timeout: 30_000 });
    expect(settings.stdout).toMatch(/^\[controller\]$/m);
    expect(settings.stdout).toMatch(/^host = 192\.0\.2\.7$/m);
    expect(settings.stdout).toMatch(/^port = 2150$/m);
  });
});
