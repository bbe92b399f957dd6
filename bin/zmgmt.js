#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=50
// The heap flags are DAEMON_NODE_FLAGS (src/management/paths.ts), which daemons also pass to the
// processes they start.
import "../dist/cli/main.js";
