// One behavioural suite for the upload-session part of every RegistryIndex that several
// processes share: admission against a session limit (createUpload's maxSessions) and the
// writer lease (acquire, renew, release, generations). Each backend's test file calls it
// with a factory that makes a fresh, empty index:
//
//   runUploadSessionSuite('lmdb', async () => ({ index, dispose }));
//
// The suite sees the interface only; time is the `now` each call is given, so expiry is
// tested without sleeping. Every call is awaited.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RegistryIndex, UploadSession } from '../../src/store/registry-index.js';

export interface OpenedSessionIndex {
  index: RegistryIndex;
  /** Closes the index and deletes its store. */
  dispose(): Promise<void>;
}

export type SessionIndexFactory = () => Promise<OpenedSessionIndex>;

const T0 = 1_700_000_000_000;
const TTL = 30_000;

const session = (id: string, startedAt = T0): UploadSession => ({ id, repo: 'r', algorithm: 'sha256', startedAt });

export function runUploadSessionSuite(name: string, factory: SessionIndexFactory): void {
  describe(`upload sessions: ${name}`, () => {
    let opened: OpenedSessionIndex | undefined;
    const index = (): RegistryIndex => {
      if (!opened) throw new Error('no index outside a test');
      return opened.index;
    };
    beforeEach(async () => {
      opened = await factory();
    });
    afterEach(async () => {
      await opened?.dispose();
      opened = undefined;
    });

    describe('admission', () => {
      it('creates sessions up to maxSessions and refuses the next, writing nothing', async () => {
        expect(await index().createUpload(session('u1'), { maxSessions: 2 })).toEqual({ ok: true });
        expect(await index().createUpload(session('u2'), { maxSessions: 2 })).toEqual({ ok: true });
        expect(await index().createUpload(session('u3'), { maxSessions: 2 })).toEqual({ ok: false, openSessions: 2 });
        expect(await index().getUpload('u3')).toBeUndefined();
        expect((await index().listUploads()).map((s) => s.id).sort()).toEqual(['u1', 'u2']);
      });

      it('counts sessions as they end: a deleted or committed one makes room', async () => {
        await index().createUpload(session('u1'), { maxSessions: 2 });
        await index().createUpload(session('u2'), { maxSessions: 2 });
        await index().deleteUpload('u1');
        expect(await index().createUpload(session('u3'), { maxSessions: 2 })).toEqual({ ok: true });
        const blob = { digest: `sha256:${'a'.repeat(64)}`, size: 1 };
        await index().commitUploadUnlinked('u2', blob.digest, blob.size, await index().reserveContent([blob]));
        expect(await index().createUpload(session('u4'), { maxSessions: 2 })).toEqual({ ok: true });
        expect(await index().createUpload(session('u5'), { maxSessions: 2 })).toEqual({ ok: false, openSessions: 2 });
      });

      it('has no limit without maxSessions', async () => {
        for (let i = 0; i < 5; i++) expect(await index().createUpload(session(`u${i}`))).toEqual({ ok: true });
        expect(await index().listUploads()).toHaveLength(5);
      });

      it('concurrent creations never pass the limit together', async () => {
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => index().createUpload(session(`u${i}`), { maxSessions: 3 })));
        expect(results.filter((r) => r.ok)).toHaveLength(3);
        expect(await index().listUploads()).toHaveLength(3);
      });
    });

    describe('writer leases', () => {
      it('a lease on an unknown session is undefined, and renewing or releasing it does nothing', async () => {
        expect(await index().acquireUploadLease('nope', 'p1', TTL, T0)).toBeUndefined();
        expect(await index().renewUploadLease('nope', 'p1', TTL, T0)).toBe(false);
        await index().releaseUploadLease('nope', 'p1');
      });

      it('is exclusive: a second holder is refused while the first holds it, with its end', async () => {
        await index().createUpload(session('u1'));
        expect(await index().acquireUploadLease('u1', 'p1', TTL, T0)).toEqual({ ok: true, generation: 1, previous: 0 });
        expect(await index().acquireUploadLease('u1', 'p2', TTL, T0 + 1)).toEqual({ ok: false, heldUntil: T0 + TTL, holder: 'p1' });
        expect(await index().acquireUploadLease('u1', 'p2', TTL, T0 + TTL - 1)).toEqual({ ok: false, heldUntil: T0 + TTL, holder: 'p1' });
      });

      it('expires: past its end another holder takes it, and the first can no longer renew', async () => {
        await index().createUpload(session('u1'));
        await index().acquireUploadLease('u1', 'p1', TTL, T0);
        expect(await index().acquireUploadLease('u1', 'p2', TTL, T0 + TTL)).toEqual({ ok: true, generation: 2, previous: 1 });
        expect(await index().renewUploadLease('u1', 'p1', TTL, T0 + TTL + 1)).toBe(false);
        expect(await index().acquireUploadLease('u1', 'p1', TTL, T0 + TTL + 2)).toEqual({ ok: false, heldUntil: T0 + 2 * TTL, holder: 'p2' });
      });

      it('renewing extends it from the given time', async () => {
        await index().createUpload(session('u1'));
        await index().acquireUploadLease('u1', 'p1', TTL, T0);
        expect(await index().renewUploadLease('u1', 'p1', TTL, T0 + 20_000)).toBe(true);
        // Past the first end, within the renewed one: still held.
        expect(await index().acquireUploadLease('u1', 'p2', TTL, T0 + TTL + 5)).toEqual({ ok: false, heldUntil: T0 + 20_000 + TTL, holder: 'p1' });
        expect(await index().renewUploadLease('u1', 'p2', TTL, T0 + TTL + 6)).toBe(false);
      });

      it('releasing frees it at once, keeps the generation, and is the holder\'s alone', async () => {
        await index().createUpload(session('u1'));
        await index().acquireUploadLease('u1', 'p1', TTL, T0);
        await index().releaseUploadLease('u1', 'p2');
        expect(await index().acquireUploadLease('u1', 'p2', TTL, T0 + 1)).toMatchObject({ ok: false });
        await index().releaseUploadLease('u1', 'p1');
        expect(await index().renewUploadLease('u1', 'p1', TTL, T0 + 2)).toBe(false);
        expect(await index().acquireUploadLease('u1', 'p2', TTL, T0 + 3)).toEqual({ ok: true, generation: 2, previous: 1 });
      });

      it('each grant advances the generation, so a holder learns whether anyone else wrote since its last lease', async () => {
        await index().createUpload(session('u1'));
        const first = await index().acquireUploadLease('u1', 'p1', TTL, T0);
        await index().releaseUploadLease('u1', 'p1');
        // Nobody else in between: the next grant's previous is p1's own last generation.
        const second = await index().acquireUploadLease('u1', 'p1', TTL, T0 + 1);
        expect(second).toEqual({ ok: true, generation: 2, previous: 1 });
        expect(first).toEqual({ ok: true, generation: 1, previous: 0 });
        await index().releaseUploadLease('u1', 'p1');
        await index().acquireUploadLease('u1', 'p2', TTL, T0 + 2);
        await index().releaseUploadLease('u1', 'p2');
        // p2 wrote in between: p1 sees a previous that is not its own last (2).
        expect(await index().acquireUploadLease('u1', 'p1', TTL, T0 + 3)).toEqual({ ok: true, generation: 4, previous: 3 });
      });

      it('takes over a live lease only from the dead holder named, not from another', async () => {
        await index().createUpload(session('u1'));
        await index().acquireUploadLease('u1', 'dead', TTL, T0);
        expect(await index().acquireUploadLease('u1', 'p2', TTL, T0 + 1, { takeOverFrom: 'someone-else' })).toEqual({
          ok: false,
          heldUntil: T0 + TTL,
          holder: 'dead',
        });
        expect(await index().acquireUploadLease('u1', 'p2', TTL, T0 + 1, { takeOverFrom: 'dead' })).toEqual({ ok: true, generation: 2, previous: 1 });
        expect(await index().renewUploadLease('u1', 'dead', TTL, T0 + 2)).toBe(false);
        // p2's lease is not 'dead''s: naming the old holder again takes nothing.
        expect(await index().acquireUploadLease('u1', 'p3', TTL, T0 + 3, { takeOverFrom: 'dead' })).toMatchObject({ ok: false, holder: 'p2' });
      });

      it('sessions have leases of their own', async () => {
        await index().createUpload(session('u1'));
        await index().createUpload(session('u2'));
        expect(await index().acquireUploadLease('u1', 'p1', TTL, T0)).toMatchObject({ ok: true });
        expect(await index().acquireUploadLease('u2', 'p2', TTL, T0)).toEqual({ ok: true, generation: 1, previous: 0 });
      });

      it('a session that ended has no lease to take, even after its holder releases', async () => {
        await index().createUpload(session('u1'));
        await index().acquireUploadLease('u1', 'p1', TTL, T0);
        await index().deleteUpload('u1');
        await index().releaseUploadLease('u1', 'p1');
        expect(await index().acquireUploadLease('u1', 'p2', TTL, T0 + 1)).toBeUndefined();
      });

      it('of concurrent acquires by different holders exactly one wins', async () => {
        await index().createUpload(session('u1'));
        const holders = Array.from({ length: 8 }, (_, i) => `p${i}`);
        const results = await Promise.all(holders.map((holder) => index().acquireUploadLease('u1', holder, TTL, T0)));
        const granted = results.filter((r) => r?.ok);
        expect(granted).toEqual([{ ok: true, generation: 1, previous: 0 }]);
        expect(results.filter((r) => r?.ok === false)).toHaveLength(holders.length - 1);
      });
    });
  });
}
