/**
 * Where the ManageSieve login comes from: a credentials file (user on the
 * first line, password on the second; refused when every user can read it)
 * or, without one, a prompt on the terminal with the password not echoed.
 * Never the command line, where every local user can read it from ps.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import { readSecretFile } from "../core/config/secrets.js";

export interface Credentials {
  user: string;
  password: string;
}

export async function readCredentialsFile(path: string): Promise<Credentials> {
  const text = await readSecretFile(path);
  const [user = "", password = ""] = text.split(/\r?\n/);
  if (user === "" || password === "") {
    throw new Error(
      `credentials file ${path} must hold the user name on the first line and the password on the second`,
    );
  }
  return { user, password };
}

/** Asks on /dev/tty (works even when standard input carries a script). */
export async function promptCredentials(defaultUser: string): Promise<Credentials> {
  let input: ReturnType<typeof createReadStream>;
  let output: ReturnType<typeof createWriteStream>;
  try {
    input = createReadStream("/dev/tty");
    output = createWriteStream("/dev/tty");
    await new Promise<void>((resolve, reject) => {
      input.once("open", () => resolve());
      input.once("error", reject);
    });
  } catch {
    throw new Error(
      "no credentials: set sieve.managesieve.credentials_file or --credentials, or run on a terminal",
    );
  }
  const ask = (question: string, hidden: boolean): Promise<string> =>
    new Promise((resolve) => {
      let muted = false;
      const terminal = createInterface({
        input,
        output: {
          write: (chunk: string) => {
            if (!muted) output.write(chunk);
            return true;
          },
        } as unknown as NodeJS.WritableStream,
        terminal: true,
      });
      terminal.question(question, (answer) => {
        terminal.close();
        if (hidden) output.write("\n");
        resolve(answer);
      });
      muted = hidden;
    });
  try {
    const typed = await ask(
      defaultUser === "" ? "ManageSieve user: " : `ManageSieve user [${defaultUser}]: `,
      false,
    );
    const user = typed === "" ? defaultUser : typed;
    const password = await ask("Password: ", true);
    if (user === "" || password === "") throw new Error("no user name or password given");
    return { user, password };
  } finally {
    input.destroy();
    output.end();
  }
}
