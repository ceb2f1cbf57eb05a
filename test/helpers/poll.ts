// One way to wait for something the test cannot be told about (a process coming up, a file
// growing, a background job finishing): probe until it answers, with a bound, so a wait that
// never ends fails the test with what it was waiting for instead of hitting vitest's timeout.

export interface WaitOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
  /** Pause between probes (default 20 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout error: "the server listening". */
  what: string;
  /** Read only on timeout, so the error can carry a log or state at that moment. */
  detail?: () => string | Promise<string>;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves with the probe's first answer other than undefined, null or false (so both
 * "is it there yet?" and "give me the thing once it is there" probes fit). A probe that
 * throws ends the wait with that error: it is for "this will never happen" (e.g. the process
 * exited); a probe that merely is not ready yet returns undefined or false.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 15_000, intervalMs = 20, what, detail }: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) {
      const more = detail ? `:\n${await detail()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${more}`);
    }
    await sleep(intervalMs);
  }
}
