/**
 * npm run stress: the replica's crash tests at full size. 110 random SIGKILLs of a follower while 3
 * writers run, and every apply step killed at its first 6 passes; each kill is checked against a replay
 * of the journal at the position the replica recorded, and the final replica against the primary.
 */
process.env.CT_REPLICA_KILLS ??= '110';
process.env.CT_REPLICA_HITS ??= '6';
await import('./workload.test.js');
await import('./crash.test.js');
