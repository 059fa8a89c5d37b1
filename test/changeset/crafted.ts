/**
 * Random changesets built field by field rather than captured: every structure the format allows
 * (NULL PK values, UPDATEs whose new.* repeats PK values, old.* values without new.*, PK ordinals,
 * many changes to one row in one input), for differential and fuzz tests.
 */
import type { Change, ChangesetKind, Field, TableChanges, Value } from '../../src/changeset/index.js';
import { SqlText } from '../../src/changeset/index.js';
import type { Rng } from './workload.js';

export interface CraftedTable {
  name: string;
  columnCount: number;
  pk: Uint8Array;
}

/** 1-3 tables; `allowNoPk` allows tables whose pk bytes are all zero (never captured by sessions). */
export function craftTables(rng: Rng, allowNoPk: boolean): CraftedTable[] {
  return Array.from({ length: rng.range(1, 3) }, (_, index) => {
    const columnCount = rng.range(1, 7);
    const pk = new Uint8Array(columnCount);
    const keyColumns = rng.shuffle(Array.from({ length: columnCount }, (_, column) => column)).slice(0, rng.range(allowNoPk ? 0 : 1, Math.min(3, columnCount)));
    rng.shuffle(keyColumns).forEach((column, position) => { pk[column] = position + 1; });
    return { name: `tab${index}`, columnCount, pk };
  });
}

const KEYS: Value[] = [1n, 2n, 3n, -1n, 'a', 'b', 1.5, Uint8Array.of(1), null];

function craftValue(rng: Rng, key: boolean): Value {
  if (key) return rng.pick(KEYS);
  return rng.pick<() => Value>([
    () => null, () => BigInt(rng.range(-3, 3)), () => rng.int64(), () => rng.pick([0.5, -0, Infinity, 2.0]),
    () => rng.pick(['', 'x', 'y', 'ünï']), () => new SqlText(Uint8Array.of(0xff)), () => rng.bytes(rng.range(0, 3)),
  ])();
}

/** A random change valid for `table` in a group of `kind`. */
export function craftChange(rng: Rng, table: CraftedTable, kind: ChangesetKind): Change {
  const isPk = Array.from(table.pk, (byte) => byte !== 0);
  const indirect = rng.chance(0.4);
  const full = (): Field[] => isPk.map((pk) => craftValue(rng, pk));
  const op = rng.pick(['insert', 'update', 'delete'] as const);
  if (op === 'insert') return { op, indirect, new: full() };
  if (op === 'delete') return { op, indirect, old: kind === 'patchset' ? isPk.map((pk) => (pk ? craftValue(rng, true) : undefined)) : full() };
  const maybe = (pk: boolean): Field => (rng.chance(0.5) ? craftValue(rng, pk) : undefined);
  if (kind === 'patchset') {
    return { op, indirect, old: isPk.map((pk) => (pk ? craftValue(rng, true) : undefined)), new: isPk.map((pk) => (pk ? undefined : maybe(false))) };
  }
  return {
    op, indirect,
    old: isPk.map((pk) => (pk ? craftValue(rng, true) : maybe(false))),
    new: isPk.map((pk) => (pk ? (rng.chance(0.05) ? craftValue(rng, true) : undefined) : maybe(false))),
  };
}

/** 1-4 groups over `tables` (names in random letter case), each with 0-12 changes. */
export function craftGroups(rng: Rng, tables: CraftedTable[], kind: ChangesetKind): TableChanges[] {
  return Array.from({ length: rng.range(1, 4) }, () => {
    const table = rng.pick(tables);
    const name = rng.chance(0.2) ? table.name.toUpperCase() : table.name;
    const changes = Array.from({ length: rng.range(0, 12) }, () => craftChange(rng, table, kind));
    return { kind, name, columnCount: table.columnCount, pk: table.pk, changes };
  });
}
