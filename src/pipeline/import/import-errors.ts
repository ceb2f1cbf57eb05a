// Why an archive import was refused, in the pipeline's own terms; server/ maps these to API errors.

export type ImportErrorKind =
  | 'archive' // not a readable tar (truncated, corrupt), an unsafe entry, or neither format
  | 'digest' // content does not hash to the digest its name, descriptor or config says
  | 'size' // content length differs from its descriptor
  | 'missing' // a manifest, config or layer the archive's metadata names is not in the archive
  | 'manifest' // the archive's metadata or a manifest in it is not valid
  | 'name'; // no valid repository or tag for an image

export class ImportError extends Error {
  constructor(
    readonly kind: ImportErrorKind,
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
