// zeekctl's networks.cfg (one CIDR network per line, optionally followed by a comment) and
// the Zeek script that puts those networks into Site::local_nets.

import { isIP } from "node:net";
import { pySplitWhitespace, pyStrip } from "./ini.js";

export interface NetworkEntry {
  zeek: string;
  comment: string;
}

export function parseNetworks(text: string, name: string, errors: string[]): NetworkEntry[] {
  const nets: NetworkEntry[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = pyStrip(lines[i]!);
    if (line === "" || line.startsWith("#")) continue;
    const [cidr, ...rest] = pySplitWhitespace(line);
    const m = /^\[?([^\]/]+)\]?\/([0-9]+)$/.exec(cidr!);
    const family = m ? isIP(m[1]!) : 0;
    const prefix = m ? Number(m[2]) : NaN;
    if (!m || family === 0 || prefix > (family === 4 ? 32 : 128)) {
      errors.push(`${name}:${i + 1}: "${cidr}" is not a network in CIDR notation (like 10.0.0.0/8 or 2001:db8::/32)`);
      continue;
    }
    nets.push({ zeek: family === 6 ? `[${m[1]}]/${prefix}` : `${m[1]}/${prefix}`, comment: rest.join(" ").replace(/[\r\n]/g, " ") });
  }
  return nets;
}

export function networksScriptText(nets: NetworkEntry[], source: string): string {
  let out = `# Site::local_nets from zeekctl's ${source}.\nredef Site::local_nets += {\n`;
  for (const net of nets) out += `\t${net.zeek},${net.comment ? `\t# ${net.comment}` : ""}\n`;
  return out + "};\n";
}
