// A private OpenLDAP slapd for integration tests: its own cn=config built
// offline with slapadd -n0 (stock core/cosine/nis/inetorgperson schemas plus
// our mail schema, one mdb database for dc=cs,dc=example,dc=org), the
// sample directory (and any extra LDIF) loaded with slapadd -q, then slapd in
// the foreground on a free 127.0.0.1 port and an ldapi socket in the temp dir.
// The system's /etc/ldap/slapd.d and port 389 are never touched. ACLs follow
// test/fixtures/README (shared/fixtures): cn=mail-reader reads everything but
// password hashes, anonymous may only bind, people may read their own entry.
// With `tls: true` the harness makes a throw-away CA and a server certificate
// it signed (for 127.0.0.1 and localhost), so clients can verify slapd the
// way production does: ldaps:// on a second port, and StartTLS on ldap://.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  abandonStart,
  type Daemon,
  destroyWith,
  freePort,
  makeTempDir,
  requireBinary,
  runChecked,
  runCommand,
  startDaemon,
  waitFor,
} from "./process.js";

const SLAPD = "/usr/sbin/slapd";
const SLAPADD = "/usr/sbin/slapadd";
const LDAPSEARCH = "/usr/bin/ldapsearch";
const OPENSSL = "/usr/bin/openssl";
const SCHEMA_DIR = "/etc/ldap/schema";
// From the source tree (test/harness) or compiled for the benchmarks (dist-bench/test/harness).
const FIXTURES = [
  resolve(fileURLToPath(new URL("../../deploy/ldap/", import.meta.url))),
  resolve(fileURLToPath(new URL("../../../deploy/ldap/", import.meta.url))),
].find((dir) => existsSync(join(dir, "mail-schema.ldif"))) as string;

export const SAMPLE_DIRECTORY_LDIF = join(FIXTURES, "sample-directory.ldif");
export const MAIL_SCHEMA_LDIF = join(FIXTURES, "mail-schema.ldif");
export const BASE_DN = "dc=cs,dc=example,dc=org";
export const READER_DN = `cn=mail-reader,ou=services,${BASE_DN}`;
export const READER_PASSWORD = "reader-secret";
export const ADMIN_DN = `cn=admin,${BASE_DN}`;
export const ADMIN_PASSWORD = "admin-secret";
/** Root over ldapi (SASL EXTERNAL), for tests that modify cn=config or data as root. */
const LDAPI_ROOT = "gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth";

export interface SlapdOptions {
  /** Extra data LDIF files loaded after the sample directory (entries under its OUs). */
  ldif?: string[];
  /** Load deploy/ldap/sample-directory.ldif first (default true; it holds the suffix and OUs). */
  sample?: boolean;
  /** Offer TLS: ldaps:// on a second port and StartTLS on ldap://, with a certificate from a fresh CA (default false). */
  tls?: boolean;
  /** slapd -d level; "stats" logs one line per operation (default), "none" for load tests. */
  logLevel?: string;
  /** Bound on start-up, including loading the data. */
  startTimeoutMs?: number;
}

export interface SlapdTls {
  /** ldaps://127.0.0.1:<port> */
  ldapsUrl: string;
  /** PEM file of the CA that signed slapd's certificate; trust it to verify slapd. */
  caPath: string;
  /** slapd's own certificate (for 127.0.0.1 and localhost). */
  certPath: string;
}

export interface Slapd {
  url: string;
  port: number;
  ldapiUrl: string;
  baseDn: string;
  readerDn: string;
  readerPassword: string;
  adminDn: string;
  adminPassword: string;
  /** Present when started with `tls: true`. */
  tls: SlapdTls | null;
  dir: string;
  logPath: string;
  /** PID of the running slapd; changes after restart(). */
  readonly pid: number;
  /** Milliseconds spent in slapadd loading data (config excluded). */
  loadMs: number;
  /** Runs ldapsearch against this server with the given arguments (-H is added). */
  ldapsearch(args: string[]): ReturnType<typeof runCommand>;
  /** Stops slapd and keeps its data; start again with restart(). */
  stop(): Promise<void>;
  /** Starts slapd again on the same port with the same data (stops it first if running). */
  restart(): Promise<void>;
  /** Stops slapd and removes the temp dir. */
  destroy(): Promise<void>;
}

function configLdif(dir: string, tls: TlsFiles | null): string {
  const tlsSettings =
    tls === null
      ? ""
      : `olcTLSCACertificateFile: ${tls.caPath}
olcTLSCertificateFile: ${tls.certPath}
olcTLSCertificateKeyFile: ${tls.keyPath}
`;
  const head = `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${dir}/slapd.pid
olcArgsFile: ${dir}/slapd.args
${tlsSettings}
dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema
`;
  const schemas = ["core", "cosine", "nis", "inetorgperson"].map((name) =>
    readSchema(join(SCHEMA_DIR, `${name}.ldif`)),
  );
  schemas.push(readSchema(MAIL_SCHEMA_LDIF));
  // Root over ldapi may manage cn=config, so later tests can change settings
  // on a running server the way an administrator would.
  const databases = `dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcAccess: {0}to * by dn.exact=${LDAPI_ROOT} manage by * break
olcAccess: {1}to dn.base="" by * read
olcAccess: {2}to dn.base="cn=Subschema" by * read
olcSizeLimit: unlimited

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by dn.exact=${LDAPI_ROOT} manage by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: ${BASE_DN}
olcDbDirectory: ${dir}/data
olcRootDN: ${ADMIN_DN}
olcRootPW: ${ADMIN_PASSWORD}
olcDbMaxSize: 2147483648
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: cn eq
olcDbIndex: mail eq,sub
olcDbIndex: mailAlternateAddress eq,sub
olcDbIndex: mailForwardingAddress eq
olcDbIndex: memberUid eq
olcDbIndex: member eq
olcDbIndex: entryUUID eq
olcDbIndex: entryCSN eq
olcLimits: {0}dn.exact="${READER_DN}" size=unlimited time=unlimited
olcAccess: {0}to attrs=userPassword by dn.exact=${LDAPI_ROOT} manage by self =xw by anonymous auth by * none
olcAccess: {1}to * by dn.exact=${LDAPI_ROOT} manage by dn.exact="${READER_DN}" read by self read by users compare by * none
`;
  return [head, ...schemas, databases].join("\n");
}

/** Schema files may end without a blank line; entries must be separated by one. */
function readSchema(path: string): string {
  const text = readFileSync(path, "utf8");
  return text.endsWith("\n") ? text : `${text}\n`;
}

/** Concatenates data LDIF files, keeping a blank line between the last entry of one and the first of the next. */
function concatenateLdif(paths: string[], target: string): void {
  const parts = paths.map((path) => readFileSync(path, "utf8").replace(/\n*$/, "\n"));
  writeFileSync(target, parts.join("\n"));
}

interface TlsFiles {
  caPath: string;
  certPath: string;
  keyPath: string;
}

/**
 * A CA and a server certificate it signed, both EC P-256 and valid for one
 * day. A real CA chain rather than one self-signed certificate, so a client
 * that trusts the CA proves it verifies the chain and the host name.
 */
async function makeTlsFiles(dir: string): Promise<TlsFiles> {
  requireBinary(OPENSSL, "openssl");
  const caPath = join(dir, "ca.pem");
  const caKeyPath = join(dir, "ca-key.pem");
  const certPath = join(dir, "server.pem");
  const keyPath = join(dir, "server-key.pem");
  const requestPath = join(dir, "server.csr");
  const extensionsPath = join(dir, "server-ext.cnf");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const options = { timeoutMs: 20_000 };
  await runChecked(
    OPENSSL,
    [
      "req",
      "-x509",
      ...ec,
      "-days",
      "1",
      "-subj",
      "/CN=emailng test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout",
      caKeyPath,
      "-out",
      caPath,
    ],
    options,
  );
  await runChecked(
    OPENSSL,
    ["req", ...ec, "-subj", "/CN=localhost", "-keyout", keyPath, "-out", requestPath],
    options,
  );
  writeFileSync(
    extensionsPath,
    "basicConstraints=critical,CA:FALSE\n" +
      "keyUsage=critical,digitalSignature\n" +
      "extendedKeyUsage=serverAuth\n" +
      "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
  );
  await runChecked(
    OPENSSL,
    [
      "x509",
      "-req",
      "-in",
      requestPath,
      "-CA",
      caPath,
      "-CAkey",
      caKeyPath,
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      extensionsPath,
      "-out",
      certPath,
    ],
    options,
  );
  return { caPath, certPath, keyPath };
}

export async function startSlapd(options: SlapdOptions = {}): Promise<Slapd> {
  requireBinary(SLAPD, "slapd");
  requireBinary(SLAPADD, "slapd");
  requireBinary(LDAPSEARCH, "ldap-utils");
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const dir = makeTempDir("slapd");
  let daemon: Daemon | undefined;
  try {
    const configDir = join(dir, "slapd.d");
    const dataDir = join(dir, "data");
    mkdirSync(configDir);
    mkdirSync(dataDir);
    const tlsFiles = options.tls === true ? await makeTlsFiles(dir) : null;
    const configPath = join(dir, "config.ldif");
    writeFileSync(configPath, configLdif(dir, tlsFiles));
    await runChecked(SLAPADD, ["-n0", "-F", configDir, "-l", configPath], { timeoutMs });

    const dataFiles = [...(options.sample === false ? [] : [SAMPLE_DIRECTORY_LDIF]), ...(options.ldif ?? [])];
    let loadMs = 0;
    if (dataFiles.length > 0) {
      // One slapadd run for everything: each run reopens the database, and
      // -q skips consistency checks, which is what makes 10k entries quick.
      const dataPath = join(dir, "data.ldif");
      concatenateLdif(dataFiles, dataPath);
      const started = Date.now();
      await runChecked(SLAPADD, ["-q", "-F", configDir, "-b", BASE_DN, "-l", dataPath], { timeoutMs });
      loadMs = Date.now() - started;
    }

    const port = await freePort();
    const tlsPort = tlsFiles === null ? null : await freePort();
    const ldapsUrl = tlsPort === null ? null : `ldaps://127.0.0.1:${tlsPort}`;
    const socketPath = join(dir, "ldapi");
    const url = `ldap://127.0.0.1:${port}`;
    const ldapiUrl = `ldapi://${encodeURIComponent(socketPath)}`;
    const logPath = join(dir, "slapd.log");

    const ldapsearch = (args: string[]) =>
      runCommand(LDAPSEARCH, ["-H", url, ...args], { timeoutMs: 15_000 });

    const launch = async (): Promise<void> => {
      // -d keeps slapd in the foreground (and logs to stderr), so the PID we
      // hold is slapd itself. Running as root without -u is fine here: every
      // file it touches lives in our temp dir.
      const current = startDaemon({
        name: "slapd",
        file: SLAPD,
        args: [
          "-d",
          options.logLevel ?? "stats",
          "-h",
          [url, ...(ldapsUrl === null ? [] : [ldapsUrl]), ldapiUrl]
            .map((listener) => `${listener}/`)
            .join(" "),
          "-F",
          configDir,
        ],
        logPath,
        cleanupDir: dir,
      });
      daemon = current;
      await waitFor(
        async () => {
          const result = await ldapsearch([
            "-x",
            "-D",
            READER_DN,
            "-w",
            READER_PASSWORD,
            "-b",
            BASE_DN,
            "-s",
            "base",
            "-o",
            "nettimeout=2",
            "dn",
          ]);
          if (result.code !== 0) throw new Error(`ldapsearch exited ${result.code}: ${result.stderr.trim()}`);
          return true;
        },
        {
          timeoutMs,
          what: `slapd on ${url} to answer a search as ${READER_DN}`,
          intervalMs: 100,
          logPaths: [logPath],
          abortIf: () => current.exitStatus(),
        },
      );
    };

    const stop = async (): Promise<void> => {
      await daemon?.stop();
    };

    await launch();
    return {
      url,
      port,
      ldapiUrl,
      baseDn: BASE_DN,
      readerDn: READER_DN,
      readerPassword: READER_PASSWORD,
      adminDn: ADMIN_DN,
      adminPassword: ADMIN_PASSWORD,
      tls:
        tlsFiles === null || ldapsUrl === null
          ? null
          : { ldapsUrl, caPath: tlsFiles.caPath, certPath: tlsFiles.certPath },
      dir,
      logPath,
      get pid(): number {
        if (daemon === undefined) throw new Error("slapd was never started");
        return daemon.pid;
      },
      loadMs,
      ldapsearch,
      stop,
      async restart(): Promise<void> {
        await stop();
        await launch();
      },
      destroy: destroyWith(stop, dir),
    };
  } catch (error) {
    return abandonStart(daemon, dir, error);
  }
}
