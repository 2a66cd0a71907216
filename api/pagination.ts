import { z } from './openapi.js';

/** Far beyond any list here; keeps `(page - 1) * page_size` an exact integer. */
export const MAX_PAGE = 1_000_000;

export const PageQuery = z.object({
  page: z.coerce.number().int().min(1).max(MAX_PAGE).default(1).openapi({ description: '1-based page number' }),
  page_size: z.coerce.number().int().min(1).max(200).default(20),
});
export type PageQuery = z.infer<typeof PageQuery>;

export function pageResult<T>(items: T[], total: number, q: PageQuery) {
  return { items, total, page: q.page, page_size: q.page_size, pages: Math.ceil(total / q.page_size) };
}

export const pageOffsets = (q: PageQuery) => ({ limit: q.page_size, offset: (q.page - 1) * q.page_size });
