// Throw-away TLS material for tests that need a peer to offer TLS (Dovecot
// with ssl=yes for ManageSieve STARTTLS, later slapd): a self-signed
// certificate and key made with the openssl command line, valid for one day,
// for a name the test chooses. Nothing here is trusted by the system; clients
// in tests either accept this certificate explicitly or skip verification.
import { join } from "node:path";
import { requireBinary, runChecked } from "./process.js";

const OPENSSL = "/usr/bin/openssl";

export interface SelfSignedCertificate {
  certPath: string;
  keyPath: string;
  commonName: string;
}

/** Writes cert.pem and key.pem into `dir` (which the caller owns and removes). */
export async function generateSelfSignedCertificate(
  dir: string,
  commonName = "localhost",
): Promise<SelfSignedCertificate> {
  requireBinary(OPENSSL, "openssl");
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  // EC keys are generated in milliseconds where 2048-bit RSA can take a second.
  await runChecked(
    OPENSSL,
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      `/CN=${commonName}`,
      "-addext",
      `subjectAltName=DNS:${commonName},IP:127.0.0.1`,
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ],
    { timeoutMs: 20_000 },
  );
  return { certPath, keyPath, commonName };
}
