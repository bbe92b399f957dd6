// Addresses to dial a listener at when all that is known is the address it listens on.

/** A listener on every address of a family is reached over that family's loopback. */
export function loopbackFor(listenHost: string | undefined): string {
  if (listenHost === undefined || listenHost === "0.0.0.0") return "127.0.0.1";
  if (listenHost === "::") return "::1";
  return listenHost;
}
