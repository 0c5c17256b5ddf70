/**
 * Entry point of the enclave plugin `confidential-workflows` (see plugin.ts and docs/confidential.md). Started by
 * the host from plugins.yaml; its compiled directory (dist/plugins/confidential-workflows) is what PCR0 measures.
 */
import { createEnclavePlugin } from './plugin.js';

createEnclavePlugin().serve();
