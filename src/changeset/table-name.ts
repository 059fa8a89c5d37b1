/** Table names compare ASCII-case-insensitively everywhere in SQLite (`sqlite3_strnicmp`, reference §1.1). */

const UPPER_A = 0x41;
const UPPER_Z = 0x5a;
const CASE_BIT = 0x20;

/** The name with ASCII letters lower-cased and every other character kept (unlike `toLowerCase`). */
export function foldTableName(name: string): string {
  let folded = '';
  let copiedUpTo = 0;
  for (let index = 0; index < name.length; index++) {
    const code = name.charCodeAt(index);
    if (code >= UPPER_A && code <= UPPER_Z) {
      folded += name.slice(copiedUpTo, index) + String.fromCharCode(code | CASE_BIT);
      copiedUpTo = index + 1;
    }
  }
  return copiedUpTo === 0 ? name : folded + name.slice(copiedUpTo);
}
