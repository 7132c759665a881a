import assert from "node:assert/strict";
import { test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import {
  MerkleTree, callHeaders, fingerprint, headerName, parseCertificate, seal, signingInput, ctxEnvelope, sortedIDs, verifyProof, type Operation, type Signer,
} from "../src/envelope";
import { RunActionSchema, RunCommandSchema } from "../src/gen/deskside/v1/diag_pb";
import {
  DesktopOperationSchema, EnvelopeBodySchema, EnvelopeCallSchema, TechnicianCertificateSchema, TechnicianTier,
} from "../src/gen/deskside/v1/envelope_pb";
// The vector proto/wire/envelope's TestSharedVectors checks too.
import vectors from "../../../proto/wire/envelope/testdata/vectors.json";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => new Uint8Array((s.match(/../g) ?? []).map((x) => parseInt(x, 16)));

/** An Ed25519 private key from its 32-byte seed, as PKCS #8 (RFC 8410). */
async function keyFromSeed(seedHex: string): Promise<CryptoKey> {
  const pkcs8 = new Uint8Array([...unhex("302e020100300506032b657004220420"), ...unhex(seedHex)]);
  return crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
}

test("the Merkle tree matches Go's roots and proofs", async () => {
  for (const v of vectors.merkle) {
    assert.deepEqual(sortedIDs(v.ids), v.sorted, `sorted ${JSON.stringify(v.ids)}`);
    const tr = await MerkleTree.build(v.ids);
    assert.equal(tr.length, v.count);
    assert.equal(hex(tr.root), v.root, `root of ${JSON.stringify(v.ids)}`);
    for (const p of v.proofs) {
      const got = tr.proof(p.id)!;
      assert.equal(got.index, p.index, `index of ${p.id}`);
      assert.deepEqual(got.siblings.map(hex), p.siblings, `proof of ${p.id}`);
      assert.ok(await verifyProof(tr.root, tr.length, p.id, got), `proof of ${p.id} verifies`);
      assert.ok(!(await verifyProof(tr.root, tr.length, "intruder", got)), "a proof verifies for another id");
    }
    assert.equal(tr.proof("intruder"), undefined);
  }
});

test("a proof with a sibling too many or too few does not verify", async () => {
  const tr = await MerkleTree.build(["a", "b", "c", "d", "e"]);
  const p = tr.proof("c")!;
  assert.ok(await verifyProof(tr.root, 5, "c", p));
  assert.ok(!(await verifyProof(tr.root, 5, "c", { index: p.index, siblings: [...p.siblings, tr.root] })));
  assert.ok(!(await verifyProof(tr.root, 5, "c", { index: p.index, siblings: p.siblings.slice(1) })));
  assert.ok(!(await verifyProof(tr.root, 5, "c", { index: 5, siblings: p.siblings })));
});

test("fingerprints are base64url SHA-256 like envelope.Fingerprint", async () => {
  assert.equal(await fingerprint(unhex(vectors.techPublicKey)), vectors.techFingerprint);
});

test("sealed envelopes carry what Go seals, signed the same way, in the same header", async () => {
  const key = await keyFromSeed(vectors.techSeed);
  const certificate = fromBinary(TechnicianCertificateSchema, unhex(vectors.certificate));
  const sign = async (d: Uint8Array) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, new Uint8Array(d)));
  const signer: Signer = { sign, certificate };
  const pub = await crypto.subtle.importKey("raw", unhex(vectors.techPublicKey), { name: "Ed25519" }, false, ["verify"]);
  assert.equal(vectors.envelopes.length, 3);
  for (const v of vectors.envelopes) {
    let op: Operation;
    switch (v.kind) {
      case "command":
        op = { case: "command", value: fromBinary(RunCommandSchema, unhex(v.op)) };
        break;
      case "action":
        op = { case: "action", value: fromBinary(RunActionSchema, unhex(v.op)) };
        break;
      default:
        op = { case: "desktop", value: fromBinary(DesktopOperationSchema, unhex(v.op)) };
    }
    const call = await seal(signer, op, v.deviceIds, { nowMs: v.issuedMs, nonce: unhex(v.nonce) });
    // The same body (Go encodes the oneof last, protobuf-es in field
    // order: the agent verifies the bytes it gets, so only the content
    // must match).
    const goBody = fromBinary(EnvelopeBodySchema, unhex(v.body));
    const ours = fromBinary(EnvelopeBodySchema, call.envelope!.body);
    assert.equal(hex(toBinary(EnvelopeBodySchema, ours)), hex(toBinary(EnvelopeBodySchema, goBody)), `${v.name}: body`);
    // Our signature covers the context string, a zero byte and our body.
    assert.ok(await crypto.subtle.verify({ name: "Ed25519" }, pub, new Uint8Array(call.envelope!.signature), new Uint8Array(signingInput(ctxEnvelope, call.envelope!.body))), `${v.name}: signature`);
    // The signing input is Go's byte for byte: over Go's body, the same
    // (deterministic) Ed25519 signature.
    assert.equal(hex(await sign(signingInput(ctxEnvelope, unhex(v.body)))), v.signature, `${v.name}: signing input`);
    // The header, with Go's body and signature in it, is Go's string:
    // Connect's base64 without padding of the EnvelopeCall.
    const goCall = create(EnvelopeCallSchema, { devices: call.devices, envelope: { body: unhex(v.body), signature: unhex(v.signature), certificate } });
    const headers = callHeaders(goCall);
    assert.deepEqual(Object.keys(headers), [headerName]);
    assert.equal(headers[headerName], v.header, `${v.name}: header`);
    assert.deepEqual(fromBinary(EnvelopeCallSchema, base64Decode(callHeaders(call)[headerName]!)).devices, v.deviceIds.length > 1 ? sortedIDs(v.deviceIds) : []);
  }
});

test("an envelope with defaults: 16 random bytes of nonce, 60 s of validity, one device without a list", async () => {
  const key = await keyFromSeed(vectors.techSeed);
  const certificate = create(TechnicianCertificateSchema);
  const call = await seal({ sign: async (d) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, new Uint8Array(d))), certificate },
    { case: "command", value: create(RunCommandSchema, { command: "true" }) }, ["dev-1"]);
  const b = fromBinary(EnvelopeBodySchema, call.envelope!.body);
  assert.equal(b.nonce.length, 16);
  assert.equal(Number(b.expiresAt!.seconds - b.issuedAt!.seconds), 60);
  assert.ok(Math.abs(Number(b.issuedAt!.seconds) * 1000 - Date.now()) < 5000);
  assert.equal(b.deviceCount, 1);
  assert.deepEqual(call.devices, []);
  await assert.rejects(seal({ sign: async () => new Uint8Array(), certificate }, { case: "command", value: create(RunCommandSchema) }, [""]));
});

test("certificates verify against the organisation key they name", async () => {
  const c = fromBinary(TechnicianCertificateSchema, unhex(vectors.certificate));
  const b = await parseCertificate(c);
  assert.equal(b?.technician, "alice");
  assert.equal(b?.tier, TechnicianTier.TIER2);
  assert.equal(hex(b!.publicKey), vectors.techPublicKey);
  const forged = create(TechnicianCertificateSchema, { body: c.body, signature: c.signature.map((x, i) => (i === 0 ? x ^ 1 : x)) });
  assert.equal(await parseCertificate(forged), undefined);
});
