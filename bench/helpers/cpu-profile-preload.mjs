// Loaded with NODE_OPTIONS="--import <this file>" into processes the benchmark does not
// start itself (the agent process its supervisor spawns), where `--cpu-prof` cannot reach:
// Node refuses that flag in NODE_OPTIONS. Same output as --cpu-prof, written at exit into
// BENCH_CPU_PROF_DIR, named so that the pid can be read back from the file name.

import { Session } from "node:inspector";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 1000 });
  session.post("Profiler.start");
  process.on("exit", () => {
    // Same-thread inspector sessions answer synchronously, so this works in an exit handler.
    session.post("Profiler.stop", (err, result) => {
      if (err || !result) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `CPU.bench.0.${process.pid}.0.001.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
