// Users from an htpasswd file with bcrypt entries, the format Distribution accepts
// (`htpasswd -B`). The file is read again when it changes, so users can be added without a
// restart. bcrypt is slow on purpose; a client sends the same credentials on every request
// of a push, so successful checks are remembered for a short while, keyed by a hash of the
// credentials and the entry (a changed password or file invalidates them).

import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { ConfigError } from '../../config/schema.js';

const BCRYPT_PREFIX = /^\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const REMEMBER_MS = 60_000;
const REMEMBER_MAX = 1024;
const RECHECK_FILE_MS = 1000;
const UNKNOWN_USER_HASH = '$2b$10$E3o4wPprmfunS5wJkoj7.ejoagEMRrPdNcJkgRwTMmyaoOBkx3wEi';

export class HtpasswdUsers {
  private users = new Map<string, string>();
  private mtimeMs = -1;
  private checkedAt = 0;
  private readonly remembered = new Map<string, number>();

  constructor(readonly file: string) {
    this.reload(true);
  }

  /** True when the user exists and the password matches its bcrypt hash. */
  async verify(user: string, password: string): Promise<boolean> {
    this.reloadIfChanged();
    const hash = this.users.get(user);
    if (hash === undefined) {
      // As slow as a wrong password, so timing does not tell which user names exist.
      await bcrypt.compare(password, UNKNOWN_USER_HASH);
      return false;
    }
    const key = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('hex');
    const until = this.remembered.get(key);
    if (until !== undefined && until > Date.now()) return true;
    if (!(await bcrypt.compare(password, hash))) return false;
    if (this.remembered.size >= REMEMBER_MAX) this.remembered.clear();
    this.remembered.set(key, Date.now() + REMEMBER_MS);
    return true;
  }

  has(user: string): boolean {
    this.reloadIfChanged();
    return this.users.has(user);
  }

  /**
   * A short digest of the user's entry, undefined when the user is gone. Refresh tokens
   * carry it, so a new password (a new entry) ends them. A digest of a salted bcrypt hash
   * tells nothing about the password.
   */
  entryTag(user: string): string | undefined {
    this.reloadIfChanged();
    const hash = this.users.get(user);
    if (hash === undefined) return undefined;
    return createHash('sha256').update(`${user}\0${hash}`).digest('base64url').slice(0, 22);
  }

  private reloadIfChanged(): void {
    if (Date.now() - this.checkedAt < RECHECK_FILE_MS) return;
    try {
      this.reload(false);
    } catch {
      // A file being rewritten or briefly missing keeps the users last read.
    }
  }

  private reload(atStart: boolean): void {
    this.checkedAt = Date.now();
    let text: string;
    try {
      const mtimeMs = statSync(this.file).mtimeMs;
      if (mtimeMs === this.mtimeMs) return;
      text = readFileSync(this.file, 'utf8');
      this.mtimeMs = mtimeMs;
    } catch (error) {
      if (atStart) throw new ConfigError('auth.htpasswd', `cannot read ${this.file}: ${(error as Error).message}`);
      throw error;
    }
    this.users = parseHtpasswd(text, this.file);
    this.remembered.clear();
  }
}

/** `user:hash` lines; blank lines and `#` comments are skipped; only bcrypt hashes are accepted. */
export function parseHtpasswd(text: string, file = 'htpasswd'): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = colon > 0 ? line.slice(0, colon) : '';
    const hash = colon > 0 ? line.slice(colon + 1) : '';
    if (!user || !BCRYPT_PREFIX.test(hash)) {
      throw new ConfigError('auth.htpasswd', `${file} line ${i + 1}: expected user:bcrypt-hash (make entries with htpasswd -B)`);
    }
    users.set(user, hash);
  });
  return users;
}
