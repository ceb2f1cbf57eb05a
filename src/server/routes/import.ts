// POST /api/v1/import?repository=<name>[:<tag>]: a `docker save` archive or an OCI
// image-layout tarball (gzipped or not), as the one file of a multipart/form-data upload
// or as the raw request body. The archive streams into the import pipeline; the answer
// lists what became visible. Outside /v2/: this is Stowage's own API, not the registry's.

import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { importArchive } from '../../pipeline/import/import-archive.js';
import { ImportError, type ImportErrorKind } from '../../pipeline/import/import-errors.js';
import { parseTarget, type Target } from '../../pipeline/import/references.js';
import type { Requirement } from '../auth/requirements.js';
import type { RegistryContext } from '../context.js';
import { ApiError, type ErrorCodeName } from '../errors.js';

export const IMPORT_PATH = '/api/v1/import';

/**
 * The registry's access control (auth/access-control.ts), absent when auth is off. An
 * import needs a known caller (push on the repository, when the query names one) before
 * its body is read, so anonymous callers cannot fill the disk, and push on every
 * repository the archive writes to before anything is linked.
 */
export interface ImportAccess {
  authorize(request: FastifyRequest, requirement: Requirement): Promise<void>;
}

const CODES: Record<ImportErrorKind, ErrorCodeName> = {
  archive: 'BLOB_UPLOAD_INVALID',
  digest: 'DIGEST_INVALID',
  size: 'SIZE_INVALID',
  missing: 'MANIFEST_BLOB_UNKNOWN',
  manifest: 'MANIFEST_INVALID',
  name: 'NAME_INVALID',
};

export function registerImportRoute(app: FastifyInstance, ctx: RegistryContext, access?: ImportAccess): void {
  void app.register(async (scope) => {
    // One file, of any size: it streams to disk through the upload pipeline, never into memory.
    await scope.register(multipart, { limits: { fileSize: Infinity, files: 1, fields: 16, parts: 32 } });
    scope.post(IMPORT_PATH, (request, reply) => importRoute(ctx, access, request, reply));
  });
}

async function importRoute(
  ctx: RegistryContext,
  access: ImportAccess | undefined,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  try {
    const target = targetOf(request);
    const push = (name: string) => access!.authorize(request, { kind: 'repository', name, action: 'push' });
    if (access) await (target ? push(target.repository) : access.authorize(request, { kind: 'login' }));
    let source: AsyncIterable<Uint8Array> = request.raw;
    if (request.isMultipart()) {
      const file = await request.file();
      if (!file) throw new ImportError('archive', 'the multipart upload holds no file');
      source = file.file;
    }
    const result = await importArchive(ctx, source, {
      target,
      authorize: access && push,
    });
    ctx.log.info({ repositories: result.repositories, images: result.images.length, bytes: result.bytes }, 'archive imported');
    return reply.code(201).header('content-type', 'application/json').send(JSON.stringify(result));
  } catch (error) {
    if (error instanceof ImportError) throw new ApiError(CODES[error.kind], error.detail, { status: 400, message: error.message });
    throw error;
  }
}

function targetOf(request: FastifyRequest): Target | undefined {
  const { repository } = request.query as Record<string, unknown>;
  if (repository === undefined || repository === '') return undefined;
  if (typeof repository !== 'string') throw new ImportError('name', 'give one repository');
  return parseTarget(repository, 'repository', false);
}
