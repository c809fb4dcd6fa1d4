/**
 * POST /v1/generations/quote: the price of a generation request before running it. The body is a
 * GenerationRequest, validated exactly as for create; nothing is created or reserved.
 */
import { z } from 'zod';
import { NormalizedParamsSchema } from './generation-request.js';

export const QuoteSchema = z
  .object({
    object: z.literal('quote'),
    model: z.string(),
    params: NormalizedParamsSchema.describe(
      'The parameters the request would run with (a random seed is drawn)',
    ),
    usage: z.object({ images: z.number().int(), megapixels: z.number(), steps: z.number().int() }),
    quote: z.string().describe('Credits the generation would reserve and charge on success, decimal string'),
    currency: z.literal('credits'),
    balance: z
      .string()
      .nullable()
      .optional()
      .describe("The tenant's prepaid balance in credits; null when the tenant has no prepaid balance"),
    monthly_spend_left: z
      .string()
      .nullable()
      .optional()
      .describe('Credits left under the monthly spend cap this UTC month; null when there is no cap'),
  })
  .meta({ id: 'Quote' });
export type Quote = z.infer<typeof QuoteSchema>;
