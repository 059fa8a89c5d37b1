/** The built package as users import it: the exports map, by package name (self-reference). */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

function importFromPackage(code: string): string {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return result.stdout.trim();
}

describe('package exports', () => {
  it('ok: "changetrail" exposes the trail API and the error class', () => {
    const names = JSON.parse(importFromPackage(`import * as m from 'changetrail'; console.log(JSON.stringify(Object.keys(m).sort()))`));
    expect(names).toEqual(['ChangetrailError', 'Replica', 'Trail', 'TrailReader', 'backup', 'blame', 'breakStaleLock', 'diffPoints', 'exportChanges', 'filterLog', 'formatPosition', 'formatVerifierKey',
      'generateSigningKey', 'inspectLock', 'isErrorCode', 'listFollowers', 'natsSource', 'openReplica', 'openTrail', 'openTrailReader', 'parseExportLine', 'parsePosition', 'parseSignedNote', 'positionsEqual', 'readBackupStamp', 'readSigningKey', 'readVerifierKey',
      'registerFollower', 'restoreTo', 'rowHistory', 'shipJournal', 'signCommittedHead', 'unregisterFollower', 'verifySignedHead']);
  });

  it('ok: "changetrail/changeset" is the codec, and its built files import no node: built-in', () => {
    const names = JSON.parse(importFromPackage(`const m = await import('changetrail/changeset'); console.log(JSON.stringify(Object.keys(m)))`));
    const dir = join(root, 'dist', 'changeset');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.js'))) {
      expect(readFileSync(join(dir, file), 'utf8'), file).not.toMatch(/from\s+['"]node:|import\(\s*['"]node:|require\(/);
    }
    for (const name of ['decodeChangeset', 'encodeChangeset', 'invertChangeset', 'combineChangesets', 'filterChangeset', 'summarizeChangeset', 'changesetToRows', 'changesetToSql']) {
      expect(names).toContain(name);
    }
  });
});
