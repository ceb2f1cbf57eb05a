// Whether the bytes of uploads are part of each request's SigV4 signature. Signed, the SDK
// hashes every part (SHA-256, on the node's event loop) and the object store hashes it again
// to check it: a part changed on the way is refused. That is the only check the bytes get
// between the node and the store, so it is the default over plain HTTP. Over HTTPS, TLS
// already authenticates every byte and both hashes are spent for nothing; they are then left
// out (UNSIGNED-PAYLOAD, which S3 and RGW accept on any request), as they may be by choice
// on a trusted link. The blob's digest is checked by the registry either way, on the bytes it
// received; this setting only decides what guards their hop into the store.

import type { S3Client } from '@aws-sdk/client-s3';

export type PayloadSigning = 'auto' | 'signed' | 'unsigned';

/** The requests that carry upload bytes; the rest have small bodies or none. */
const DATA_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);

/** What `auto` means for an endpoint: signed over plain HTTP, unsigned over HTTPS (AWS itself when unset). */
export function signsPayload(signing: PayloadSigning, endpoint: string | undefined): boolean {
  if (signing !== 'auto') return signing === 'signed';
  return endpoint !== undefined && new URL(endpoint).protocol === 'http:';
}

/** Marks data requests UNSIGNED-PAYLOAD before they are signed; the signer takes a payload hash header as given. */
export function leavePayloadsUnsigned(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string> } | undefined;
      if (request?.headers && DATA_COMMANDS.has(context.commandName ?? '')) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'stowageUnsignedPayload' },
  );
}
