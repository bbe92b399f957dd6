// Prints "N passed, N failed[, N skipped]" over one or more vitest JSON reports.
import { readFileSync } from "node:fs";

const firstLine = (text) =>
  String(text ?? "")
    .split("\n")[0]
    .slice(0, 300);

const files = process.argv.slice(2);
if (files.length === 0) files.push("test-results.json");
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    // A suite that wrote no report did not run to the end: count it as a failure.
    console.error(`no test report at ${file}: ${err.message}`);
    failed += 1;
    continue;
  }
  passed += report.numPassedTests ?? 0;
  // A test file that fails to load has no failed test inside it; count it as one failure.
  const brokenFiles = (report.testResults ?? []).filter(
    (f) => f.status === "failed" && !(f.assertionResults ?? []).some((a) => a.status === "failed"),
  ).length;
  failed += (report.numFailedTests ?? 0) + brokenFiles;
  // Named again here, so the end of a long log says what failed.
  for (const f of report.testResults ?? []) {
    const failures = (f.assertionResults ?? []).filter((a) => a.status === "failed");
    if (f.status === "failed" && failures.length === 0) console.log(`FAILED ${f.name}: ${firstLine(f.message)}`);
    for (const a of failures) console.log(`FAILED ${f.name} > ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
  }
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
