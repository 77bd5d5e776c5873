/**
 * Reads secrets (the LDAP bind password, later API tokens) from their own
 * files. Secrets never sit in the configuration file, which is usually
 * readable by every emailng program and often kept in version control; a
 * secret file belongs to the one program that needs it (CONVENTIONS 14).
 *
 * A file other users can read is refused rather than warned about: the whole
 * point of the separate file is lost if anyone on the host can read it.
 * One trailing newline is removed because `echo secret > file` and editors
 * add it, and it is never part of the password.
 */
import { open } from "node:fs/promises";

/** Secrets are short; a large file means a wrong path. */
const MAX_SECRET_BYTES = 64 * 1024;

export class SecretFileError extends Error {
  readonly code = "config.invalid" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SecretFileError";
  }
}

/** Reads the secret in `path`; throws SecretFileError with the reason and the fix. */
export async function readSecretFile(path: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    throw new SecretFileError(`cannot open secret file ${path} (${code})`, { cause: error });
  }
  try {
    // Checked on the open handle, so the file cannot be swapped between check and read.
    const info = await handle.stat();
    if (!info.isFile()) throw new SecretFileError(`secret file ${path} is not a regular file`);
    if (info.mode & 0o004) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
      throw new SecretFileError(
        `secret file ${path} is readable by every user (mode ${mode}); run: chmod o-rwx ${path}`,
      );
    }
    if (info.size > MAX_SECRET_BYTES) {
      throw new SecretFileError(`secret file ${path} is larger than ${MAX_SECRET_BYTES} bytes`);
    }
    const text = await handle.readFile("utf8");
    const secret = text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text;
    if (secret === "") throw new SecretFileError(`secret file ${path} is empty`);
    return secret;
  } finally {
    await handle.close();
  }
}
