// Progress lines go to stderr so a redirected stdout stays clean.

export type Logf = (line: string) => void;

export const logf: Logf = (line) => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};
