// What the checks of one fsck run found and what they would change. Reading and every check
// report through one collector so that a repair asked for twice (by two findings, or by a
// finding and its consequence) is made once and reported once.

import type { IndexRepair } from '../../store/registry-index.js';
import type { FsckFinding, FsckIssue, FsckIssueKind, FsckWarningKind } from './fsck-report.js';

/** The key of an entry in the snapshot's maps and of a repair: one string for a key's parts. */
export const keyOf = (...parts: string[]) => JSON.stringify(parts);

export class Findings {
  readonly issues: FsckIssue[] = [];
  readonly warnings: FsckFinding<FsckWarningKind>[] = [];
  /** What --repair writes to the index, in one transaction. */
  readonly repairs: IndexRepair[] = [];
  private readonly claimed = new Set<string>();

  /** True the first time `id` is claimed, false after: a repair is asked for once. */
  claim(id: string): boolean {
    if (this.claimed.has(id)) return false;
    this.claimed.add(id);
    return true;
  }

  issue(kind: FsckIssueKind, message: string, repair: IndexRepair | undefined, about: Omit<FsckFinding, 'kind' | 'message'> = {}): void {
    if (repair) {
      if (!this.claim(keyOf(repair.op, repair.table, ...(Array.isArray(repair.key) ? repair.key : [repair.key])))) return;
      this.repairs.push(repair);
    }
    this.issues.push({ kind, message, ...about, repaired: false });
  }

  /** A repair that follows from another finding: made, not reported again. */
  consequence(repair: IndexRepair): void {
    this.repairs.push(repair);
  }

  warn(kind: FsckWarningKind, message: string, about: Omit<FsckFinding, 'kind' | 'message'>): void {
    this.warnings.push({ kind, message, ...about });
  }
}
