// Signed envelopes (docs/adr 22) on the browser's side, without the key
// storage (signing.ts): the Merkle tree of a request's device ids, the
// signing input, sealing an EnvelopeBody and its call header. A port of
// proto/wire/envelope; proto/wire/envelope/testdata/vectors.json is the
// test vector both sides check (test/envelope.test.ts, vector_test.go).
//
// Signing input: the context string of the kind, a zero byte, then the
// protobuf bytes of the body. The agent checks the signature over the
// bytes it receives and only then decodes them, so the browser's encoding
// (protobuf-es toBinary) need not match Go's byte for byte, and does not:
// Go writes a oneof after the other fields, protobuf-es in field order.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { encodeBinaryHeader } from "@connectrpc/connect";
import {
  EnvelopeBodySchema, EnvelopeCallSchema, RevocationListBodySchema, TechnicianCertificateBodySchema,
  type EnvelopeBody, type EnvelopeCall, type RevocationList, type RevocationListBody, type TechnicianCertificate,
  type TechnicianCertificateBody,
} from "./gen/deskside/v1/envelope_pb";

/** Context strings, one per signed kind (proto/wire/envelope). */
export const ctxEnvelope = "deskside envelope v1";
export const ctxCertificate = "deskside technician certificate v1";
export const ctxRevocations = "deskside revocation list v1";

/** headerName is the call metadata that carries an EnvelopeCall (relay/server). */
export const headerName = "deskside-envelope-bin";

/** lifetimeMs is how long an envelope is valid, as the CLI signs it. */
export const lifetimeMs = 60_000;

/** Operation is what an envelope signs: a command, an action or a desktop session with all their arguments. */
export type Operation = EnvelopeBody["operation"];

const enc = new TextEncoder();

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const b = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    b.set(p, o);
    o += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", b));
}

/** sortedIDs returns ids sorted by their UTF-8 bytes (as Go sorts strings), without duplicates or empty strings. */
export function sortedIDs(ids: readonly string[]): string[] {
  return [...new Set(ids)].filter((x) => x !== "").sort(byBytes);
}

function byBytes(a: string, b: string): number {
  const x = enc.encode(a), y = enc.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

const leaf = (id: string) => sha256(new Uint8Array([0]), enc.encode(id));
const node = (l: Uint8Array, r: Uint8Array) => sha256(new Uint8Array([1]), l, r);

/** Proof is a device's proof: the leaf's index and the sibling hashes from the leaf up. */
export interface Proof {
  index: number;
  siblings: Uint8Array[];
}

/**
 * MerkleTree is the tree of a device list, as proto/wire/envelope builds
 * it: leaves SHA-256(0x00 || id) of the sorted, distinct ids, inner nodes
 * SHA-256(0x01 || left || right), an odd node at the end of a level moves
 * up unchanged.
 */
export class MerkleTree {
  private constructor(readonly ids: string[], private readonly levels: Uint8Array[][]) {}

  static async build(ids: readonly string[]): Promise<MerkleTree> {
    const s = sortedIDs(ids);
    let lv = await Promise.all(s.map(leaf));
    const levels = [lv];
    while (lv.length > 1) {
      const next: Promise<Uint8Array>[] = [];
      for (let i = 0; i < lv.length; i += 2) next.push(i + 1 < lv.length ? node(lv[i]!, lv[i + 1]!) : Promise.resolve(lv[i]!));
      lv = await Promise.all(next);
      levels.push(lv);
    }
    return new MerkleTree(s, levels);
  }

  /** root is the root hash; empty for an empty list. */
  get root(): Uint8Array {
    return this.levels[this.levels.length - 1]![0] ?? new Uint8Array();
  }

  get length(): number {
    return this.ids.length;
  }

  /** proof returns the proof of id, undefined when id is not in the list. */
  proof(id: string): Proof | undefined {
    let i = this.ids.indexOf(id);
    if (i < 0) return undefined;
    const p: Proof = { index: i, siblings: [] };
    for (const lv of this.levels.slice(0, -1)) {
      const sib = i ^ 1;
      if (sib < lv.length) p.siblings.push(lv[sib]!);
      i = Math.floor(i / 2);
    }
    return p;
  }
}

/** verifyProof reports whether id is leaf p.index of the tree of count leaves with the given root. */
export async function verifyProof(root: Uint8Array, count: number, id: string, p: Proof): Promise<boolean> {
  let i = p.index, n = count;
  if (i >= n) return false;
  let h = await leaf(id);
  const sibs = [...p.siblings];
  while (n > 1) {
    if ((i ^ 1) < n) {
      const s = sibs.shift();
      if (!s) return false;
      h = i % 2 === 0 ? await node(h, s) : await node(s, h);
    }
    i = Math.floor(i / 2);
    n = Math.floor((n + 1) / 2);
  }
  return sibs.length === 0 && equalBytes(h, root);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** signingInput is what a signature of kind ctx covers: ctx, a zero byte, the body. */
export function signingInput(ctx: string, body: Uint8Array): Uint8Array {
  const c = enc.encode(ctx);
  const b = new Uint8Array(c.length + 1 + body.length);
  b.set(c);
  b.set(body, c.length + 1);
  return b;
}

/** fingerprint is base64url (no padding) of the SHA-256 of a public key, as envelope.Fingerprint. */
export async function fingerprint(pub: Uint8Array): Promise<string> {
  const h = await sha256(pub);
  let s = "";
  for (const x of h) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Signer signs with a technician's key; certificate is the organisation's certificate of that key. */
export interface Signer {
  sign(data: Uint8Array): Promise<Uint8Array>;
  certificate: TechnicianCertificate;
}

/** SealOptions fixes what is random or timed in an envelope (tests). */
export interface SealOptions {
  nowMs?: number;
  nonce?: Uint8Array;
}

/**
 * seal signs op for deviceIDs and returns the EnvelopeCall to send with
 * the request: the envelope, and the sorted device list when there is
 * more than one device (the relay derives each device's proof from it).
 */
export async function seal(s: Signer, op: Operation, deviceIDs: readonly string[], o: SealOptions = {}): Promise<EnvelopeCall> {
  const tree = await MerkleTree.build(deviceIDs);
  if (tree.length === 0) throw new Error("seal: no device");
  const now = o.nowMs ?? Date.now();
  const nonce = o.nonce ?? crypto.getRandomValues(new Uint8Array(16));
  const body = toBinary(EnvelopeBodySchema, create(EnvelopeBodySchema, {
    devicesRoot: tree.root,
    deviceCount: tree.length,
    operation: op,
    nonce,
    issuedAt: timestampFromMs(now),
    expiresAt: timestampFromMs(now + lifetimeMs),
  }));
  const signature = await s.sign(signingInput(ctxEnvelope, body));
  return create(EnvelopeCallSchema, { envelope: { body, signature, certificate: s.certificate }, devices: tree.length > 1 ? tree.ids : [] });
}

/** callHeaders are the request headers that carry call: the Connect protocol's base64 for a -bin header. */
export function callHeaders(call: EnvelopeCall): Record<string, string> {
  return { [headerName]: encodeBinaryHeader(call, EnvelopeCallSchema) };
}

/** decodeEnvelopeBody reads an envelope's body (tests, and showing what was signed). */
export function decodeEnvelopeBody(body: Uint8Array): EnvelopeBody {
  return fromBinary(EnvelopeBodySchema, body);
}

async function ed25519Verify(pub: Uint8Array, ctx: string, body: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (pub.length !== 32) return false;
  try {
    const k = await crypto.subtle.importKey("raw", new Uint8Array(pub), { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, k, new Uint8Array(sig), new Uint8Array(signingInput(ctx, body)));
  } catch {
    return false;
  }
}

/**
 * parseCertificate reads a certificate and checks its signature against
 * the organisation key it names (envelope.ParseCertificate); undefined
 * when it is malformed or does not verify. Agents check that key against
 * their pin; the console shows its fingerprint for comparing.
 */
export async function parseCertificate(c: TechnicianCertificate): Promise<TechnicianCertificateBody | undefined> {
  let b: TechnicianCertificateBody;
  try {
    b = fromBinary(TechnicianCertificateBodySchema, c.body);
  } catch {
    return undefined;
  }
  return (await ed25519Verify(b.orgPublicKey, ctxCertificate, c.body, c.signature)) ? b : undefined;
}

/** parseRevocations reads a revocation list signed by the organisation key orgPub; undefined otherwise. */
export async function parseRevocations(orgPub: Uint8Array, l: RevocationList): Promise<RevocationListBody | undefined> {
  let b: RevocationListBody;
  try {
    b = fromBinary(RevocationListBodySchema, l.body);
  } catch {
    return undefined;
  }
  if (!equalBytes(b.orgPublicKey, orgPub)) return undefined;
  return (await ed25519Verify(orgPub, ctxRevocations, l.body, l.signature)) ? b : undefined;
}

/** revoked reports whether a revocation list names a certificate or its technician (envelope.Revoked). */
export function revoked(l: RevocationListBody | undefined, c: TechnicianCertificateBody): boolean {
  if (!l) return false;
  return l.technicians.includes(c.technician) || l.certificateSerials.some((s) => equalBytes(s, c.serial));
}
