/**
 * Which columns a schema change renamed. A column whose name exists before and after is the same column;
 * of the rest, an old and a new column at the same position are one column renamed (RENAME COLUMN keeps
 * the position; a dropped column and an added one do not share a position, since ADD COLUMN appends).
 */
export function columnRenames(before: readonly string[], after: readonly string[]): Map<string, string> {
  const renames = new Map<string, string>();
  const kept = new Set(before.filter((column) => after.includes(column)));
  before.forEach((column, position) => {
    const candidate = after[position];
    if (kept.has(column) || candidate === undefined || before.includes(candidate)) return;
    renames.set(column, candidate);
  });
  return renames;
}
