import { z } from 'zod';

/** RFC 9457 problem details, with the error code and the offending fields. */
export const ProblemSchema = z
  .object({
    type: z.string().describe('A URI identifying the problem type'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    code: z.string().describe('Stable machine-readable error code'),
    errors: z
      .array(z.object({ field: z.string(), message: z.string() }))
      .optional()
      .describe('Per-field validation errors; `field` is a dotted path such as `width`'),
    request_id: z.string().optional(),
  })
  .meta({ id: 'Problem' });
export type Problem = z.infer<typeof ProblemSchema>;
