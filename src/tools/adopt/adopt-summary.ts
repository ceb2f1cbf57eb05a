// What an adoption reports: counts, and the entries it skipped with why (adopt.ts says which
// are skipped). The CLI prints it, `serve --adopt` logs it.

export interface AdoptionProblem {
  /** Path relative to <root>/docker/registry/v2, unprintable characters escaped. */
  where: string;
  problem: string;
}

export interface AdoptionSummary {
  root: string;
  repositories: number;
  blobsLinked: number;
  manifests: number;
  /** Recorded although a blob or child they reference is not in their repository. */
  manifestsWithMissingReferences: number;
  tags: number;
  /** Upload sessions registered, to resume under Stowage. */
  uploads: number;
  /** Entries skipped; the first MAX_LISTED_PROBLEMS (adopt.ts) are in problemList. */
  problems: number;
  problemList: AdoptionProblem[];
  durationMs: number;
  /** Set when nothing was read because the index records a complete adoption (see `again`). */
  alreadyAdoptedAt?: number;
}

export interface AdoptOptions {
  /** Read the root again although a complete adoption is recorded (adds what is new; never removes). */
  again?: boolean;
  /** After each repository is read; `total` is known once the repositories are found. */
  onProgress?(done: number, total: number, repository: string): void;
}
