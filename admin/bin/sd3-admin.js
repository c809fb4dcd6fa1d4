#!/usr/bin/env node
// The `sd3-admin` command. The sources are TypeScript, loaded through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
