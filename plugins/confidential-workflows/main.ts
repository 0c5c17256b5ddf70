/**
 * Entry point of the enclave plugin `confidential-workflows` (see plugin.ts and docs/confidential-execution.md). Started by
 * the host from plugins.yaml; its compiled directory (dist/plugins/confidential-workflows) is what PCR0 measures.
 * With a `relay` config, capability calls and secrets go through the relay DON client of sdk/confidential; without
 * one they fail with `relay not configured`.
 */
import { createRelayClient } from '../../sdk/confidential/index.js';
import { createEnclavePlugin } from './plugin.js';

createEnclavePlugin({ relayFactory: createRelayClient }).serve();
