// The technician's signing key in this browser (docs/adr 22): an Ed25519
// WebCrypto key whose private half is not extractable, kept in IndexedDB
// (per origin, so per relay, and per technician). Its public key is
// registered with the relay (OrgService.RegisterTechnicianKey); an admin
// certifies it offline with the organisation key
// (deskside technician certify), and the certificate comes back through ListTechnicianKeys.
// From then on every command, action and desktop session this browser asks
// for carries an envelope signed with the key (envelope.ts), which devices
// that pin the organisation key require. Without a certificate requests go
// unsigned, as before: devices that pin no key still take them.

import { toBinary, fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { orgClient } from "./api";
import { callHeaders, equalBytes, fingerprint, parseCertificate, parseRevocations, revoked, seal, type Operation } from "./envelope";
import {
  TechnicianCertificateSchema, type TechnicianCertificate, type TechnicianCertificateBody, type TechnicianKey,
} from "./gen/deskside/v1/envelope_pb";
import { browserLabel } from "./signwords";

const dbName = "deskside-signing";
const storeName = "keys";

/** StoredKey is what IndexedDB keeps for one technician. */
interface StoredKey {
  technician: string;
  /** The private key: a CryptoKey that cannot be exported. */
  privateKey: CryptoKey;
  /** The raw 32-byte public key. */
  publicKey: Uint8Array;
  fingerprint: string;
  label: string;
  created: number;
  /** The certificate (TechnicianCertificate bytes) once the relay had one. */
  certificate?: Uint8Array | undefined;
}

/** KeyInfo is the public side of this browser's key, for showing. */
export interface KeyInfo {
  fingerprint: string;
  label: string;
  created: Date;
}

/** Certified describes a certificate of this browser's key. */
export interface Certified {
  body: TechnicianCertificateBody;
  orgFingerprint: string;
  notAfter: Date | undefined;
}

/**
 * SigningState is where this browser stands:
 *   unsupported  no IndexedDB or WebCrypto here
 *   none         no key in this browser
 *   unregistered a key the relay does not list (registering failed, or an admin removed it)
 *   waiting      registered, not certified yet
 *   certified    requests are signed
 *   expired      the certificate's validity is over (requests are still signed: devices say why they refuse)
 *   revoked      the organisation's revocation list names the technician or the certificate
 *   invalid      the relay's certificate does not verify or is for another key
 * error is set when the relay could not be asked; the state is then what
 * this browser last knew.
 */
export type SigningState =
  | { kind: "unsupported"; reason: string }
  | { kind: "none" }
  | { kind: "unregistered" | "waiting"; key: KeyInfo; error?: string | undefined }
  | { kind: "certified" | "expired" | "revoked"; key: KeyInfo; cert: Certified; error?: string | undefined }
  | { kind: "invalid"; key: KeyInfo; reason: string; error?: string | undefined };

function supported(): string | undefined {
  if (typeof indexedDB === "undefined") return "this browser has no IndexedDB (a private window may turn it off)";
  if (!globalThis.crypto?.subtle) return "this page has no WebCrypto (it needs HTTPS)";
  return undefined;
}

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error("IndexedDB request failed"));
  });
}

let dbp: Promise<IDBDatabase> | undefined;

function db(): Promise<IDBDatabase> {
  dbp ??= new Promise<IDBDatabase>((resolve, reject) => {
    const r = indexedDB.open(dbName, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(storeName, { keyPath: "technician" });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error("cannot open IndexedDB"));
    r.onblocked = () => reject(new Error("IndexedDB is blocked by another tab of this console; close it and try again"));
  }).catch((e: unknown) => {
    dbp = undefined;
    throw e;
  });
  return dbp;
}

async function load(technician: string): Promise<StoredKey | undefined> {
  const tx = (await db()).transaction(storeName, "readonly");
  return (await req(tx.objectStore(storeName).get(technician))) as StoredKey | undefined;
}

async function store(k: StoredKey): Promise<void> {
  const tx = (await db()).transaction(storeName, "readwrite");
  await req(tx.objectStore(storeName).put(k));
}

async function forget(technician: string): Promise<void> {
  const tx = (await db()).transaction(storeName, "readwrite");
  await req(tx.objectStore(storeName).delete(technician));
}

const info = (k: StoredKey): KeyInfo => ({ fingerprint: k.fingerprint, label: k.label, created: new Date(k.created) });

/** What the last look at the state found, per technician, for signing without asking the relay each time. */
let cache: { technician: string; at: number; key: StoredKey | undefined; cert: TechnicianCertificate | undefined } | undefined;

/** cacheMs is how long signing trusts what it last found; a missing certificate is looked for again sooner. */
const cacheMs = 5 * 60_000;
const cacheMissingMs = 15_000;

function setCache(technician: string, key: StoredKey | undefined): void {
  cache = { technician, at: Date.now(), key, cert: key?.certificate ? fromBinary(TechnicianCertificateSchema, key.certificate) : undefined };
}

/**
 * signingState reads this browser's key and asks the relay for its
 * certificate (and the revocation list). The relay's answer is checked
 * here as far as a browser can: the certificate must verify under the
 * organisation key it names and certify this key. Agents check the rest.
 */
export async function signingState(technician: string, signal?: AbortSignal): Promise<SigningState> {
  const why = supported();
  if (why) return { kind: "unsupported", reason: why };
  let k: StoredKey | undefined;
  try {
    k = await load(technician);
  } catch (e) {
    return { kind: "unsupported", reason: `this browser's storage cannot be used (${e instanceof Error ? e.message : String(e)})` };
  }
  if (!k) {
    setCache(technician, undefined);
    return { kind: "none" };
  }
  let error: string | undefined;
  let listed: TechnicianKey | undefined;
  let asked = false;
  try {
    const resp = await orgClient.listTechnicianKeys({}, { signal });
    asked = true;
    listed = resp.keys.find((x) => equalBytes(x.publicKey, k.publicKey));
  } catch (e) {
    if (signal?.aborted) throw e;
    error = e instanceof Error ? e.message : String(e);
  }
  if (listed?.certificate && listed.certificate.body.length > 0) {
    const raw = toBinary(TechnicianCertificateSchema, listed.certificate);
    if (!k.certificate || !equalBytes(raw, k.certificate)) {
      k.certificate = raw;
      await store(k).catch(() => {});
    }
  }
  setCache(technician, k);
  if (!k.certificate) {
    return { kind: asked && !listed ? "unregistered" : "waiting", key: info(k), error };
  }
  const cert = fromBinary(TechnicianCertificateSchema, k.certificate);
  const body = await parseCertificate(cert);
  if (!body) return { kind: "invalid", key: info(k), reason: "its signature does not verify", error };
  if (!equalBytes(body.publicKey, k.publicKey)) return { kind: "invalid", key: info(k), reason: "it certifies another key", error };
  if (body.technician !== technician) return { kind: "invalid", key: info(k), reason: `it is for ${body.technician}`, error };
  const c: Certified = { body, orgFingerprint: await fingerprint(body.orgPublicKey), notAfter: body.notAfter ? timestampDate(body.notAfter) : undefined };
  if (c.notAfter && c.notAfter.getTime() < Date.now()) return { kind: "expired", key: info(k), cert: c, error };
  try {
    const l = (await orgClient.getRevocations({}, { signal })).list;
    if (l && revoked(await parseRevocations(body.orgPublicKey, l), body)) return { kind: "revoked", key: info(k), cert: c, error };
  } catch (e) {
    if (signal?.aborted) throw e;
    error ??= e instanceof Error ? e.message : String(e);
  }
  return { kind: "certified", key: info(k), cert: c, error };
}

/**
 * createKey makes this browser's key for technician (replacing none: an
 * existing key is kept) and registers its public key with the relay. The
 * key is stored before it is registered, so a failed registration can be
 * retried (registerKey).
 */
export async function createKey(technician: string, signal?: AbortSignal): Promise<void> {
  const why = supported();
  if (why) throw new Error(`Cannot keep a signing key: ${why}.`);
  if (await load(technician)) throw new Error("This browser already has a signing key for you.");
  let pair: CryptoKeyPair;
  try {
    pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  } catch {
    throw new Error("This browser cannot make Ed25519 keys (WebCrypto). Use an up-to-date Chrome, Edge, Firefox or Safari, or sign with the CLI (deskside technician keygen).");
  }
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const k: StoredKey = {
    technician, privateKey: pair.privateKey, publicKey: pub, fingerprint: await fingerprint(pub),
    label: browserLabel(navigator.userAgent), created: Date.now(),
  };
  await store(k);
  setCache(technician, k);
  await register(k, signal);
}

async function register(k: StoredKey, signal?: AbortSignal): Promise<void> {
  await orgClient.registerTechnicianKey({ publicKey: k.publicKey, label: k.label }, { signal });
}

/** registerKey registers this browser's existing key again (after a failure, or after an admin removed it). */
export async function registerKey(technician: string, signal?: AbortSignal): Promise<void> {
  const k = await load(technician);
  if (!k) throw new Error("This browser has no signing key for you: create one.");
  await register(k, signal);
}

/** removeKey deletes this browser's key, and asks the relay to forget its public key. */
export async function removeKey(technician: string, signal?: AbortSignal): Promise<void> {
  const k = await load(technician);
  if (!k) return;
  await forget(technician);
  setCache(technician, undefined);
  try {
    await orgClient.deleteTechnicianKey({ fingerprint: k.fingerprint }, { signal });
  } catch {
    // The key is gone from this browser, which is what matters; the relay
    // keeps a public key nobody can sign with until an admin removes it.
  }
}

let technician = "";

/** setTechnician names who is signed in (main.ts); signing uses that technician's key. */
export function setTechnician(name: string): void {
  if (name !== technician) cache = undefined;
  technician = name;
}

/**
 * envelopeHeaders signs op for deviceIDs when this browser has a
 * certificate for the signed-in technician's key and returns the call
 * headers that carry the envelope; undefined (an unsigned request) when
 * it has none. Expired or revoked certificates still sign: a device that
 * pins the organisation key then says why it refuses, and one that pins
 * none ignores the envelope.
 */
export async function envelopeHeaders(op: Operation, deviceIDs: readonly string[]): Promise<Record<string, string> | undefined> {
  if (!technician || supported()) return undefined;
  try {
    const fresh = cache?.technician === technician && Date.now() - cache.at < (cache.cert ? cacheMs : cacheMissingMs);
    if (!fresh) await signingState(technician);
    const c = cache;
    if (!c?.key || !c.cert || c.technician !== technician) return undefined;
    const key = c.key.privateKey;
    const call = await seal({
      sign: async (d) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, new Uint8Array(d))),
      certificate: c.cert,
    }, op, deviceIDs);
    return callHeaders(call);
  } catch {
    // Storage or WebCrypto failed: send the request unsigned; a device
    // that needs an envelope says so, and the profile shows the state.
    return undefined;
  }
}
