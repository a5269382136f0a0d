/// <reference types="vite/client" />

interface ImportMetaEnv {
  readonly VITE_TOKEN_ENDPOINT?: string;
  readonly VITE_AGENT_NAME?: string;
  readonly VITE_AGENT_JOIN_TIMEOUT_MS?: string;
  /** `true` only in builds for browser tests: exposes the call's room (useTestHooks). */
  readonly VITE_E2E_HOOKS?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
