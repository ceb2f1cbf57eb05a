// What the hash worker needs from an implementation of SHA-256/512. States cross this
// boundary only in the persisted (Go MarshalBinary) encoding, so engines are
// interchangeable mid-upload and a state one wrote is resumed by any other.

import type { DigestAlgorithm } from '../oci/digest.js';

export interface HashEngine {
  readonly name: string;
  /** Continues `state` over `chunks`, in order, and returns the new state. */
  update(algorithm: DigestAlgorithm, state: Uint8Array, chunks: readonly Uint8Array[]): Uint8Array;
  /** The lowercase hex digest of everything hashed into `state`. */
  digest(algorithm: DigestAlgorithm, state: Uint8Array): string;
}
