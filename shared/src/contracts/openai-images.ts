/** The OpenAI Images API shape (POST /v1/images/generations), mapped onto native jobs. */
import { z } from 'zod';

export const OpenAiImageRequestSchema = z
  .strictObject({
    prompt: z.string().min(1).max(10_000),
    model: z.string().optional(),
    n: z.number().int().min(1).max(4).optional(),
    size: z
      .string()
      .regex(/^\d+x\d+$/, { message: 'must look like 1024x1024' })
      .optional(),
    response_format: z.enum(['url', 'b64_json']).optional(),
    output_format: z.enum(['png', 'jpeg', 'webp']).optional(),
    quality: z.string().optional().describe('Accepted for compatibility; ignored'),
    style: z.string().optional().describe('Accepted for compatibility; ignored'),
    user: z.string().max(256).optional(),
  })
  .meta({ id: 'OpenAiImageRequest' });
export type OpenAiImageRequest = z.infer<typeof OpenAiImageRequestSchema>;

export const OpenAiImageResponseSchema = z
  .object({
    created: z.number().int(),
    data: z.array(
      z.object({
        url: z.string().optional(),
        b64_json: z.string().optional(),
        revised_prompt: z.string().optional(),
      }),
    ),
  })
  .meta({ id: 'OpenAiImageResponse' });
export type OpenAiImageResponse = z.infer<typeof OpenAiImageResponseSchema>;
