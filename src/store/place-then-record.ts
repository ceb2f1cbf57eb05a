// The write-then-record step every writer of content shares (manifest PUT, upload commit,
// archive import). GC may remove content between a writer placing it and the index recording
// it: the same bytes were garbage a moment earlier. The index then refuses the record before
// writing anything (ContentMissingError), and the writer places the bytes again.

import { ContentMissingError } from './registry-index.js';

/** Tries before the last ContentMissingError is given up to the caller: GC would have to win five races in a row. */
export const PLACE_ATTEMPTS = 5;

export async function placeThenRecord<T>(place: () => Promise<void>, record: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    await place();
    try {
      return await record();
    } catch (error) {
      if (!(error instanceof ContentMissingError) || attempt >= PLACE_ATTEMPTS) throw error;
    }
  }
}
