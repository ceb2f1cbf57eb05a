// The reserve-place-record step every writer of content shares (manifest PUT, upload commit,
// archive import), the writer's half of the GC protocol in registry-index.ts: reserve the
// digests in the index (waiting out a GC that is deleting them this moment), place the bytes,
// record them with the reservation. If GC marked or removed the record in between, the
// index refuses the record before writing anything (ContentMissingError) and the writer
// starts again from the reservation.

import { setTimeout as sleep } from 'node:timers/promises';
import { ContentMissingError, type ContentItem, type RegistryIndex, type Reservation } from './registry-index.js';

/** Rounds before the last ContentMissingError is given up to the caller: GC would have to win five races in a row. */
export const PLACE_ATTEMPTS = 5;

/** Waits for a deletion in progress, growing by this much each time; GC's removal of a batch takes milliseconds. */
const DELETION_WAIT_MS = 25;
const DELETION_WAITS = 40;

export async function placeThenRecord<T>(
  index: Pick<RegistryIndex, 'reserveContent'>,
  content: readonly ContentItem[],
  place: () => Promise<void>,
  record: (reservation: Reservation) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const reservation = await reserve(index, content);
    await place();
    try {
      return await record(reservation);
    } catch (error) {
      if (!(error instanceof ContentMissingError) || attempt >= PLACE_ATTEMPTS) throw error;
    }
  }
}

async function reserve(index: Pick<RegistryIndex, 'reserveContent'>, content: readonly ContentItem[]): Promise<Reservation> {
  if (content.length === 0) return { deleting: [], held: new Map() };
  for (let wait = 1; ; wait++) {
    const reservation = await index.reserveContent(content);
    if (reservation.deleting.length === 0) return reservation;
    // Bounded: a mark outlives its GC run by at most its window, after which reserving takes it over.
    if (wait > DELETION_WAITS) throw new ContentMissingError(reservation.deleting[0]);
    await sleep(Math.min(DELETION_WAIT_MS * wait, 1000));
  }
}
