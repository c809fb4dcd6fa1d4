#!/usr/bin/env node
// The `sd3-runner` service: consumes the jobs queue of one model. Configured by environment variables
// (see src/service/config.ts). The sources are TypeScript, loaded through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/service/main.ts');
process.exitCode = await main();
// Everything is closed by now; do not let a straggling socket keep the process alive.
setTimeout(() => process.exit(), 2000).unref();
