// GET /services.json: Prometheus HTTP service discovery for the whole cluster, in the
// format Prometheus's http_sd_configs reads (and Zeek's manager serves for its cluster).

import type { IncomingMessage, ServerResponse } from "node:http";
import { normalizeAddress } from "../broker/server.js";
import type { SdTarget } from "./node-stats.js";

export const SERVICES_PATH = "/services.json";

export function servicesRoute(targets: (reachedAt: { host: string; port: number }) => Promise<SdTarget[]>) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if ((req.url ?? "").split("?")[0] !== SERVICES_PATH) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
      res.end("method not allowed\n");
      return true;
    }
    // The address the scraper used reaches this controller, whatever it listens on.
    const reachedAt = { host: normalizeAddress(req.socket.localAddress ?? "127.0.0.1"), port: req.socket.localPort ?? 0 };
    const body = JSON.stringify(await targets(reachedAt));
    res.writeHead(200, { "content-type": "application/json" });
    res.end(req.method === "HEAD" ? undefined : body + "\n");
    return true;
  };
}
