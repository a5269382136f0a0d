import '@testing-library/jest-dom/vitest';
import { setLogLevel } from '@livekit/components-react';
import { cleanup } from '@testing-library/react';
import { LogLevel, setLogLevel as setSdkLogLevel } from 'livekit-client';
import { afterEach } from 'vitest';

// The SDK logs every expected failure the tests provoke; keep the output to test results.
setLogLevel('silent');
setSdkLogLevel(LogLevel.silent);

afterEach(() => {
  cleanup();
});
