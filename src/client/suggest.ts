// "Did you mean" for names a person typed: commands, settings, node names.

/** Optimal string alignment distance (Levenshtein plus adjacent swaps, the usual typo). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidates closest to `word`: at most two edits away and sharing more than 40% of
 * their letters (the rule commander uses for its own suggestions), best first.
 */
export function similarNames(word: string, candidates: Iterable<string>): string[] {
  let best = 3;
  let found: string[] = [];
  for (const candidate of new Set(candidates)) {
    if (candidate === word || candidate.length === 0) continue;
    const distance = editDistance(word, candidate);
    const similarity = (Math.max(word.length, candidate.length) - distance) / Math.max(word.length, candidate.length);
    if (distance > 2 || similarity <= 0.4) continue;
    if (distance < best) {
      best = distance;
      found = [candidate];
    } else if (distance === best) {
      found.push(candidate);
    }
  }
  return found.sort();
}

/** ` (did you mean X?)`, or an empty string when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const names = similarNames(word, candidates);
  if (names.length === 0) return "";
  return ` (did you mean ${names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`}?)`;
}
