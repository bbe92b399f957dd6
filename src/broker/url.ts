import { WEBSOCKET_PATH } from "./messages.js";

/** Accepts host:port, ws(s)://host:port, or a full URL; adds the API path when missing. */
export function webSocketUrl(target: string, tls = false): string {
  const withScheme = /^wss?:\/\//.test(target) ? target : `${tls ? "wss" : "ws"}://${target}`;
  const url = new URL(withScheme);
  if (url.pathname === "/" || url.pathname === "") url.pathname = WEBSOCKET_PATH;
  return url.toString();
}
