/**
 * Node-side tooling of the workflow SDK (the AssemblyScript library itself is `sdk/workflow/assembly`).
 */
export {
  type CompileOptions,
  type CompileProgress,
  compileWorkflow,
  compileWorkflowTree,
  isWorkflowDir,
  workflowBinaryPath,
} from './compile.js';
