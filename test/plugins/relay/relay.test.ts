/**
 * The relay DON as real processes: 4 relay nodes, the vault and a capability behind the gateway; the test process
 * plays the enclave (dev attestor + RelayClient). Needs `npx tsc -p .` (npm test builds dist first).
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { eventually } from '../../host/supervisor/helpers.js';
import { relayKeyFile } from '../../../plugins/relay/keys.js';
import {
  encodeRelayedCall,
  RELAY_CAPABILITY_ID,
  RelayErrorCode,
  VAULT_CAPABILITY_ID,
} from '../../../sdk/confidential/relay-wire.js';
import { bytesText, jsonBytes, textBytes } from '../../../sdk/protocol/index.js';
import { signedSecretWrite } from '../../../plugins/vault/store.js';
import {
  capabilityExecuteBinding,
  generateEncryptionKeyPair,
  personalSign,
  registrationMessage,
  secretsGetBinding,
  toChecksumAddress,
} from '../../../sdk/trust/index.js';
import {
  CONTEXT,
  MEASUREMENT,
  OWNER,
  OWNER_KEY,
  type RelayHarness,
  registeredContext,
  startRelayHarness,
} from './harness.js';

const SECRET = 'sk-relay-test-4f1c9e7d';

function echoCall(text: string, callbackId = 1) {
  return { id: 'echo@1.0.0', method: 'Execute', payload: textBytes(text), callbackId };
}

async function rpc(
  h: RelayHarness,
  body: unknown,
): Promise<{ error?: { code: number; message: string }; result?: unknown }> {
  const response = await fetch(h.running.server.url, { method: 'POST', body: JSON.stringify(body) });
  return (await response.json()) as { error?: { code: number; message: string }; result?: unknown };
}

describe('an honest relay DON of 4 nodes (F = 1)', () => {
  let h: RelayHarness;
  beforeAll(async () => {
    h = await startRelayHarness({ maxRestarts: 0 });
    h.vault.set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes(SECRET)),
      textBytes(SECRET),
    );
  }, 30_000);
  afterAll(async () => h?.stop());

  test('publishes its 4 signer keys, F and the gateway URL in the relay capability registry config', () => {
    const config = h.registry.getConfig(RELAY_CAPABILITY_ID) as { signers: string[]; f: number; gatewayUrl: string };
    expect(config.signers).toHaveLength(4);
    expect(new Set(config.signers).size).toBe(4);
    expect(config.f).toBe(1);
    expect(config.gatewayUrl).toBe(h.running.server.url);
  });

  test('keeps each node key in its data directory with mode 0600', () => {
    for (let i = 0; i < 4; i++) {
      expect(statSync(relayKeyFile(path.join(h.dir, 'relay'), i)).mode & 0o777).toBe(0o600);
    }
  });

  test('delivers a vault secret sealed to the enclave, which opens it after checking F+1 signatures', async () => {
    const [answer] = await h.client().getSecrets(CONTEXT, [{ id: 'API_KEY', namespace: 'main' }]);
    expect(answer).toEqual({
      secret: { id: 'API_KEY', namespace: 'main', owner: toChecksumAddress(OWNER), value: SECRET },
    });
  });

  test("refuses, with F+1 signed refusals naming the rule, a secret request whose registration is not the owner's", async () => {
    const attackerKey = new Uint8Array(32).fill(7);
    const victim = registeredContext(['API_KEY'], 'victim');
    const forged = {
      ...victim,
      registration: {
        registration: victim.registration!.registration,
        signature: personalSign(attackerKey, registrationMessage(victim.registration!.registration)),
      },
    };
    const [answer] = await h.client().getSecrets(forged, [{ id: 'API_KEY', namespace: 'main' }]);
    expect(answer?.error).toMatch(
      /^relay: unauthorized: registration does not verify: owner_signature: registration is signed by 0x/,
    );
    const { registration: _none, ...unregistered } = victim;
    const [missing] = await h.client().getSecrets(unregistered, [{ id: 'API_KEY', namespace: 'main' }]);
    expect(missing?.error).toBe('relay: unauthorized: the request carries no owner-signed workflow registration');
    const call = await h.client().executeCapability(unregistered, echoCall('no registration'));
    expect(call.error).toBe('unauthorized: the request carries no owner-signed workflow registration');
  });

  test("refuses a secret that the registration does not list, even for the owner's own workflow", async () => {
    const [answer] = await h.client().getSecrets(registeredContext(['OTHER']), [{ id: 'API_KEY', namespace: 'main' }]);
    expect(answer?.error).toBe(
      'relay: unauthorized: secret "main/API_KEY" is not listed in the registration\'s vault_don_secrets',
    );
  });

  test('answers a per-secret not found error next to a found secret', async () => {
    const answers = await h.client().getSecrets(CONTEXT, [
      { id: 'API_KEY', namespace: 'main' },
      { id: 'MISSING', namespace: 'main' },
    ]);
    expect(answers[0]?.secret?.value).toBe(SECRET);
    expect(answers[1]).toEqual({ error: 'secret "main/MISSING" not found' });
  });

  test('executes a capability through the relay and returns its payload', async () => {
    const answer = await h.client().executeCapability(CONTEXT, echoCall('through the relay'));
    expect(answer.error).toBeUndefined();
    expect(bytesText(answer.payload!)).toBe('through the relay');
  });

  test('returns a capability-level error as {error}, signed like a payload', async () => {
    const answer = await h.client().executeCapability(CONTEXT, { ...echoCall('x'), id: 'nope@1.0.0' });
    expect(answer).toEqual({ error: 'capability "nope@1.0.0" is unavailable' });
  });

  test('refuses to relay calls to the vault itself', async () => {
    const answer = await h
      .client()
      .executeCapability(CONTEXT, { ...echoCall('{}'), id: VAULT_CAPABILITY_ID, method: 'secrets_get' });
    expect(answer).toEqual({ error: 'capability "vault@1.0.0-alpha" may not be called through the relay' });
  });

  test('refuses to relay confidential-http: it runs only inside the enclave', async () => {
    const answer = await h
      .client()
      .executeCapability(CONTEXT, { ...echoCall('{}'), id: 'confidential-http@1.0.0-alpha', method: 'SendRequest' });
    expect(answer).toEqual({
      error: 'capability "confidential-http@1.0.0-alpha" may not be called through the relay',
    });
  });

  test('rejects an enclave whose code (so PCR0) changed, naming the failed step', async () => {
    const changed = { ...MEASUREMENT, pcr0: 'ff'.repeat(48) };
    const [answer] = await h.client(changed).getSecrets(CONTEXT, [{ id: 'API_KEY', namespace: 'main' }]);
    expect(answer?.error).toMatch(
      /^relay: attestation rejected: pcrs: PCR0\/1\/2 \(pcr0 f{96}\) match none of the 1 trusted measurement sets$/,
    );
    const call = await h.client(changed).executeCapability(CONTEXT, echoCall('x'));
    expect(call.error).toMatch(/^relay: attestation rejected: pcrs:/);
  });

  test('rejects an attestation replayed with different params', async () => {
    const params = {
      workflow_id: CONTEXT.workflowId,
      owner: OWNER,
      execution_id: CONTEXT.executionId,
      reference_id: '1',
      capability_id: 'echo@1.0.0',
      payload: encodeRelayedCall('Execute', textBytes('original')),
    };
    const document = await h.attestor.attest({ pcrs: MEASUREMENT, userData: capabilityExecuteBinding(params) });
    const attestation = Buffer.from(document).toString('base64');
    const original = await rpc(h, {
      jsonrpc: '2.0',
      id: 'replay-1',
      method: 'confidential.capability.execute',
      params: { ...params, attestation },
    });
    expect(original.error).toBeUndefined();
    const replayed = await rpc(h, {
      jsonrpc: '2.0',
      id: 'replay-2',
      method: 'confidential.capability.execute',
      params: { ...params, payload: encodeRelayedCall('Execute', textBytes('changed')), attestation },
    });
    expect(replayed.error?.code).toBe(RelayErrorCode.AttestationRejected);
    expect(replayed.error?.message).toMatch(
      /^attestation rejected: user_data: user_data [0-9a-f]+ does not equal the expected binding$/,
    );
  });

  test('rejects a request without an attestation', async () => {
    const answer = await rpc(h, {
      jsonrpc: '2.0',
      id: 'no-attestation',
      method: 'confidential.secrets.get',
      params: {
        workflow_id: 'w',
        owner: OWNER,
        execution_id: 'ab'.repeat(32),
        secrets: [{ key: 'API_KEY', namespace: 'main' }],
        enclave_public_key: 'aa'.repeat(32),
      },
    });
    expect(answer.error).toEqual({
      code: RelayErrorCode.AttestationRejected,
      message: 'attestation rejected: payload: attestation is required',
      data: { answers: [] },
    });
  });

  test('the vault refuses a direct call that carries no enclave attestation', async () => {
    const response = await h.registry.getExecutable(VAULT_CAPABILITY_ID).execute({
      method: 'secrets_get',
      payload: jsonBytes({
        request: {
          workflow_id: 'w',
          owner: OWNER,
          execution_id: 'ab'.repeat(32),
          secrets: [{ key: 'API_KEY', namespace: 'main' }],
          enclave_public_key: 'aa'.repeat(32),
        },
        owner: toChecksumAddress(OWNER),
      }),
      metadata: { workflowId: 'w', workflowExecutionId: 'ab'.repeat(32), referenceId: '1' },
    });
    expect(response.error).toBe('payload: attestation is required');
  });

  test('still works with one relay node killed, and fails at once when fewer than F+1 nodes remain', async () => {
    const instances = h.supervisor.instances('relay');
    process.kill(instances[0]!.pid!, 'SIGKILL');
    await eventually(() => instances[0]!.state === 'failed');
    const one = await h.client().executeCapability(CONTEXT, echoCall('three nodes left'));
    expect(bytesText(one.payload!)).toBe('three nodes left');

    process.kill(instances[1]!.pid!, 'SIGKILL');
    process.kill(instances[2]!.pid!, 'SIGKILL');
    await eventually(() => instances[1]!.state === 'failed' && instances[2]!.state === 'failed');
    const started = performance.now();
    const none = await h.client().executeCapability(CONTEXT, echoCall('one node left'));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(none.error).toBe('relay: failed to forward user request to nodes: 3 of 4 sends failed, F+1 = 2 required');
    expect(h.running.gateway.activeRequests).toBe(0);
  }, 20_000);
});

describe('a relay DON with hostile nodes', () => {
  test.each([
    ['tamper', 'signs a tampered result'],
    ['forge-signature', 'sends a forged signature'],
    ['foreign-signature', 'signs with a key foreign to the DON'],
  ])(
    'ignores one node that %s (%s)',
    async (mode) => {
      const h = await startRelayHarness({ relayConfig: { testBehaviour: { nodes: [0], mode } } });
      try {
        h.vault.set(
          signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes(SECRET)),
          textBytes(SECRET),
        );
        for (let i = 0; i < 3; i++) {
          const [secret] = await h.client().getSecrets(CONTEXT, [{ id: 'API_KEY', namespace: 'main' }]);
          expect(secret?.secret?.value).toBe(SECRET);
          const call = await h.client().executeCapability(CONTEXT, echoCall(`call ${i}`, i));
          expect(bytesText(call.payload!)).toBe(`call ${i}`);
        }
      } finally {
        await h.stop();
      }
    },
    30_000,
  );

  test('fails fast with quorum unobtainable when two nodes are killed and one of the two left tampers', async () => {
    const h = await startRelayHarness({
      maxRestarts: 0,
      requestTimeoutMs: 5000,
      relayConfig: { testBehaviour: { nodes: [3], mode: 'tamper' } },
    });
    try {
      const instances = h.supervisor.instances('relay');
      process.kill(instances[0]!.pid!, 'SIGKILL');
      process.kill(instances[1]!.pid!, 'SIGKILL');
      await eventually(() => instances[0]!.state === 'failed' && instances[1]!.state === 'failed');
      const started = performance.now();
      const answer = await h.client().executeCapability(CONTEXT, echoCall('x'));
      expect(performance.now() - started).toBeLessThan(1000);
      // The two answers left are both validly signed, and differ: the enclave says so from its own count.
      expect(answer.error).toBe(
        "relay: the relay nodes' answers differed: 2 distinct validly signed answers among 2, F+1 = 2 identical required; a capability called from a confidential workflow runs once per relay node and needs F+1 identical answers, so it must be deterministic (gateway: quorum unobtainable: best 1 of 2 required agreeing signers (4 nodes: 2 votes in 2 buckets, 2 errors, 0 pending))",
      );
    } finally {
      await h.stop();
    }
  }, 30_000);
});

describe('a capability that answers differently on every relay node', () => {
  test('fails with an error saying the nodes answers differed and how many distinct answers there were', async () => {
    const h = await startRelayHarness({
      maxRestarts: 0,
      extraPlugins: [
        {
          name: 'nondeterministic',
          command: ['node', 'dist/test/fixtures/plugins/nondeterministic.js'],
          capabilities: ['random@1.0.0'],
        },
      ],
    });
    try {
      const answer = await h.client().executeCapability(CONTEXT, {
        id: 'random@1.0.0',
        method: 'Execute',
        payload: textBytes('{}'),
        callbackId: 1,
      });
      expect(answer.error).toMatch(
        /^relay: the relay nodes' answers differed: 4 distinct validly signed answers among 4, F\+1 = 2 identical required; a capability called from a confidential workflow runs once per relay node and needs F\+1 identical answers, so it must be deterministic \(gateway: quorum unobtainable: /,
      );
      // echo is deterministic: the same DON agrees on it.
      const echo = await h.client().executeCapability(CONTEXT, echoCall('same everywhere'));
      expect(bytesText(echo.payload!)).toBe('same everywhere');
    } finally {
      await h.stop();
    }
  }, 30_000);
});

describe('a relay DON whose vault keeps no seal cache', () => {
  let h: RelayHarness;
  beforeAll(async () => {
    h = await startRelayHarness({ maxRestarts: 3, vaultConfig: { sealCacheTtlMs: 0 } });
    h.vault.set(
      signedSecretWrite(OWNER_KEY, 'set', { namespace: 'main', key: 'API_KEY' }, textBytes(SECRET)),
      textBytes(SECRET),
    );
  }, 30_000);
  afterAll(async () => h?.stop());

  test('every relay node receives the same sealed secret, so F+1 agree on every request', async () => {
    for (let i = 0; i < 3; i++) {
      const [answer] = await h.client().getSecrets(CONTEXT, [{ id: 'API_KEY', namespace: 'main' }]);
      expect(answer?.secret?.value).toBe(SECRET);
    }
  });

  test('the vault seals one request identically before and after a restart, and the relay path still agrees', async () => {
    const keys = generateEncryptionKeyPair();
    const request = {
      workflow_id: CONTEXT.workflowId,
      owner: OWNER,
      execution_id: CONTEXT.executionId,
      secrets: [{ key: 'API_KEY', namespace: 'main' }],
      enclave_public_key: Buffer.from(keys.publicKey).toString('hex'),
    };
    const document = await h.attestor.attest({
      pcrs: MEASUREMENT,
      userData: secretsGetBinding(request),
      publicKey: keys.publicKey,
    });
    const call = async () => {
      const response = await h.registry.getExecutable(VAULT_CAPABILITY_ID).execute({
        method: 'secrets_get',
        payload: jsonBytes({
          request: { ...request, attestation: Buffer.from(document).toString('base64') },
          owner: toChecksumAddress(OWNER),
        }),
        metadata: { workflowId: CONTEXT.workflowId, workflowExecutionId: CONTEXT.executionId, referenceId: '1' },
      });
      expect(response.error).toBeUndefined();
      return bytesText(response.payload!);
    };
    const before = await call();
    const vault = h.supervisor.instances('vault')[0]!;
    const pid = vault.pid;
    process.kill(pid!, 'SIGKILL');
    await eventually(() => vault.state === 'ready' && vault.pid !== pid);
    expect(await call()).toBe(before);
    const [answer] = await h.client().getSecrets(CONTEXT, [{ id: 'API_KEY', namespace: 'main' }]);
    expect(answer?.secret?.value).toBe(SECRET);
  }, 20_000);
});

describe('a relay DON whose operator adds to the deny-list', () => {
  let h: RelayHarness;
  beforeAll(async () => {
    h = await startRelayHarness({ relayConfig: { deniedCapabilities: ['echo@1.0.0'] } });
  }, 30_000);
  afterAll(async () => h?.stop());

  test.each([
    ['echo@1.0.0', 'Execute'],
    [VAULT_CAPABILITY_ID, 'secrets_get'],
    [RELAY_CAPABILITY_ID, 'confidential.secrets.get'],
    ['confidential-workflows@1.0.0-alpha', 'Execute'],
  ])('refuses %s: the operator list adds to the built-in one, never replaces it', async (id, method) => {
    const answer = await h.client().executeCapability(CONTEXT, { ...echoCall('{}'), id, method });
    expect(answer).toEqual({ error: `capability "${id}" may not be called through the relay` });
  });
});
