/**
 * The edge on AWS Lambda behind a function URL with response streaming (needed for SSE). The
 * deps come from the function's environment; `awslambda` is the global the Node runtime provides.
 */
import { streamHandle } from 'hono/aws-lambda';
import { createApp } from '../app.js';
import type { EdgeDeps } from '../deps.js';
import { createAwsDeps } from './aws/create-aws-deps.js';

export function createLambdaHandler(deps: EdgeDeps) {
  return streamHandle(createApp(deps));
}

export const handler = createLambdaHandler(createAwsDeps(process.env));
