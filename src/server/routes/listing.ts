// Tags, catalog and referrers: the read-only listings.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { Page } from '../../store/registry-index.js';
import { listVisibleRepositories } from '../auth/caller.js';
import type { RegistryContext } from '../context.js';
import { errors } from '../errors.js';

type Query = Record<string, string | string[] | undefined>;

export async function listTags(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
): Promise<void> {
  const page = parsePage(request.query as Query);
  const tags = await ctx.index.listTags(name, more(page));
  if (!tags) throw errors.nameUnknown(name);
  const shown = paginate(reply, `/v2/${name}/tags/list`, page, tags);
  return reply.code(200).send({ name, tags: shown });
}

export async function listCatalog(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const page = parsePage(request.query as Query);
  const repositories = paginate(reply, '/v2/_catalog', page, await listVisibleRepositories(ctx.index, request, more(page)));
  return reply.code(200).send({ repositories });
}

export async function listReferrers(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  subject: Digest,
): Promise<void> {
  const filter = single((request.query as Query).artifactType);
  const manifests = (await ctx.index.listReferrers(name, subject.value))
    .filter((record) => filter === undefined || record.artifactType === filter)
    .map((record) => ({
      mediaType: record.mediaType,
      digest: record.digest,
      size: record.size,
      ...(record.artifactType !== undefined ? { artifactType: record.artifactType } : {}),
      ...(record.annotations !== undefined ? { annotations: record.annotations } : {}),
    }));
  if (filter !== undefined) reply.header('oci-filters-applied', 'artifactType');
  return reply
    .code(200)
    .header('content-type', MediaType.OciIndex)
    // A Buffer, so fastify adds no charset parameter: the spec asks for the bare media type.
    .send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests })));
}

function parsePage(query: Query): Page {
  const n = single(query.n);
  const last = single(query.last);
  const page: Page = {};
  if (n !== undefined) {
    if (!/^\d{1,9}$/.test(n)) throw errors.paginationInvalid(n);
    page.n = Number(n);
  }
  if (last !== undefined) page.last = last;
  return page;
}

/** Asks the index for one entry more than shown, to know whether a next page exists. */
function more(page: Page): Page {
  return page.n === undefined ? page : { ...page, n: page.n + 1 };
}

function paginate(reply: FastifyReply, path: string, page: Page, entries: string[]): string[] {
  if (page.n === undefined || entries.length <= page.n) return entries;
  const shown = entries.slice(0, page.n);
  if (shown.length > 0) {
    const next = new URLSearchParams({ n: String(page.n), last: shown[shown.length - 1] });
    reply.header('link', `<${path}?${next.toString()}>; rel="next"`);
  }
  return shown;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
