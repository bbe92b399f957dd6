// Part of `npm run build`: puts the dashboard's page (src/controller/web) and the front-end
// library it imports (Preact and htm, pinned in package.json) into dist/controller/web, so
// the package carries everything the page loads and the browser fetches nothing elsewhere.

import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const out = join(root, "dist/controller/web");
// Not require.resolve: htm's package exports hide its package.json and dist files.
const pkgDir = (name) => join(root, "node_modules", name);

rmSync(out, { recursive: true, force: true });
cpSync(join(root, "src/controller/web"), out, { recursive: true });
mkdirSync(join(out, "vendor"), { recursive: true });

const preact = pkgDir("preact");
const htm = pkgDir("htm");
const vendor = [
  [join(preact, "dist/preact.mjs"), "preact.mjs"],
  [join(preact, "hooks/dist/hooks.mjs"), "hooks.mjs"],
  [join(htm, "dist/htm.module.js"), "htm.mjs"],
  [join(preact, "LICENSE"), "preact.LICENSE.txt"],
  [join(htm, "LICENSE"), "htm.LICENSE.txt"],
];
for (const [from, to] of vendor) {
  let text = readFileSync(from, "utf8");
  // Browsers cannot resolve bare specifiers without an import map, which the page's
  // content security policy would have to allow as inline script; point at the file.
  if (to === "hooks.mjs") {
    const rewritten = text.replace(/from\s*"preact"/g, 'from"./preact.mjs"');
    if (rewritten === text) throw new Error(`${from}: no import of "preact" found to rewrite`);
    text = rewritten;
  }
  if (/from\s*"[^./]/.test(text)) throw new Error(`${from}: bare module specifier left in ${to}`);
  writeFileSync(join(out, "vendor", to), text);
}
