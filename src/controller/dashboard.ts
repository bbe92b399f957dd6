// The web dashboard: static files served on the controller's WebSocket port at `GET /`.
// The page is a Broker WebSocket JSON client of the same controller (on the same origin),
// so it sees exactly what zeek-client sees, with notify_change pushes for live updates.
// The files live next to this module in web/ (the build copies them there, with the
// front-end library); access follows ./access.ts.

import { readdirSync, readFileSync, statSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { HttpHandler } from "../broker/server.js";
import { Principal, TOKEN_COOKIE, TOKEN_QUERY, accessLevelOf, type ControllerAccess } from "./access.js";

/** Where the built page lives: dist/controller/web/. */
export const DASHBOARD_DIR = fileURLToPath(new URL("./web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".txt": "text/plain; charset=utf-8",
};

// The page loads nothing from elsewhere and runs no inline script; its WebSocket goes to
// its own origin ('self' covers ws: and wss: of the same host).
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

interface Asset {
  type: string;
  body: Buffer;
}

/** Reads every file below `dir` once; only these paths are ever served. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (d: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const name of entries) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const dot = name.lastIndexOf(".");
      const type = TYPES[dot < 0 ? "" : name.slice(dot)];
      if (type === undefined) continue;
      assets.set(`/${relative(dir, path).split(sep).join("/")}`, { type, body: readFileSync(path) });
    }
  };
  walk(dir);
  return assets;
}

export interface DashboardOptions {
  access: ControllerAccess;
  /** Defaults to DASHBOARD_DIR. */
  directory?: string;
  /** Whether the listener is TLS, so the token cookie is marked Secure. */
  tls: boolean;
}

/** The dashboard's routes; requests for other paths are left to the next handler. */
export function dashboardHandler(options: DashboardOptions): HttpHandler {
  const assets = loadAssets(options.directory ?? DASHBOARD_DIR);
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://dashboard");
    const path = url.pathname === "/" ? "/index.html" : url.pathname;
    if (path !== "/access.json" && !assets.has(path)) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain; charset=utf-8", "method not allowed\n", { allow: "GET, HEAD" });
      return true;
    }
    const login = url.searchParams.get(TOKEN_QUERY);
    if (login !== null && path === "/index.html") {
      tokenLogin(options, login, res);
      return true;
    }
    const principal = options.access.principalOf(req);
    if (principal === false || principal === Principal.anonymous) {
      const why =
        principal === false
          ? "the access token presented is not valid"
          : "this controller listens on a non-loopback address: use a client certificate, or open /?token=ACCESS_TOKEN";
      send(res, 401, "text/plain; charset=utf-8", `401 Unauthorized: ${why}\n`, { "www-authenticate": 'Bearer realm="zmgmt"' });
      return true;
    }
    if (path === "/access.json") {
      send(res, 200, "application/json", `${JSON.stringify({ access: accessLevelOf(principal), principal })}\n`);
      return true;
    }
    const asset = assets.get(path)!;
    send(res, 200, asset.type, req.method === "HEAD" ? "" : asset.body, { "content-length": String(asset.body.length) });
    return true;
  };
}

/** `/?token=…`: a valid token becomes an HttpOnly cookie and the URL loses it. */
function tokenLogin(options: DashboardOptions, token: string, res: ServerResponse): void {
  if (options.access.lookup(token) === undefined) {
    send(res, 401, "text/plain; charset=utf-8", "401 Unauthorized: the access token presented is not valid\n");
    return;
  }
  const cookie = `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${options.tls ? "; Secure" : ""}`;
  send(res, 303, "text/plain; charset=utf-8", "signed in\n", { location: "/", "set-cookie": cookie });
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, ...headers });
  res.end(body);
}
