import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [react()],
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
  // The LiveKit SDK alone is most of the bundle; splitting it would not make the first call faster.
  build: { sourcemap: true, chunkSizeWarningLimit: 1000 },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
    // `make test` runs this suite right after the server-backed ones; a stall of the machine
    // while they wind down must not read as a failing component.
    testTimeout: 15_000,
  },
});
