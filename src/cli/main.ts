#!/usr/bin/env node
// zmgmt: daemons (controller, agent, node, up) and zeek-client compatible client commands.

// `zmgmt node` starts once per cluster node and again after every crash, so it skips
// loading the rest of the CLI: that keeps restarts fast and nodes small.
if (process.argv[2] === "node" && process.argv.length === 3) {
  const { runNode } = await import("../node/main.js");
  await runNode().catch((err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
} else {
  const { main } = await import("./program.js");
  await main(process.argv);
}
