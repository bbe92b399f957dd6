// The control-plane baseline: a bare WebSocket server (same library as the controller)
// that sends every text frame straight back. Reports its port over IPC.

import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on("listening", () => {
  const addr = wss.address();
  process.send?.({ port: addr !== null && typeof addr === "object" ? addr.port : 0 });
});
process.on("disconnect", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
