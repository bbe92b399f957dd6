// A port nothing listens on right now, chosen by the kernel. Another process may still take
// it before it is used; callers that bind later accept that small window.

import { createServer, type AddressInfo } from "node:net";

export function pickFreePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolvePort(port));
    });
  });
}
