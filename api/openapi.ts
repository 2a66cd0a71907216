import { z } from 'zod';
import { extendZodWithOpenApi, OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';

extendZodWithOpenApi(z);

export { z };

/**
 * No C0/C1 control characters (newline, tab, NUL, DEL, ...). Written with explicit ranges and no
 * regex flags, so the OpenAPI `pattern` is a plain ECMA-262 regex every validator understands
 * (a `/u` regex leaked its flag into the document as `...$/u`, a pattern that can never match).
 */
export const NO_CONTROL_RE = /^[^\u0000-\u001f\u007f-\u009f]*$/;
export const noControlText = (max: number, message = 'must not contain control characters (newlines, tabs, NUL)') =>
  z.string().max(max).regex(NO_CONTROL_RE, message);

export function envelope<T extends z.ZodType>(data: T) {
  return z.object({ code: z.literal(0), message: z.string(), data });
}

export function paginated<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), total: z.number().int(), page: z.number().int(), page_size: z.number().int(), pages: z.number().int() });
}

export const ErrorEnvelope = z
  .object({
    code: z.number().int().openapi({ example: 40001 }),
    message: z.string(),
    data: z.unknown().nullable(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    request_id: z.string().optional(),
  })
  .openapi('Error');

type Doc = ReturnType<OpenApiGeneratorV31['generateDocument']>;

/**
 * What the generator cannot say from zod alone, fixed on the whole document:
 * - a regex with flags is printed as `source/flags`; JSON Schema patterns carry no flags, so the
 *   flag suffix is dropped (patterns here are written to need none: see NO_CONTROL_RE);
 * - request bodies are closed (defineRoute refuses unknown fields): `additionalProperties: false`.
 */
export function finishDocument(doc: Doc): Doc {
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (typeof o.pattern === 'string') o.pattern = o.pattern.replace(/(?<!\\)\/[dgimsuvy]+$/, '');
    Object.values(o).forEach(walk);
  };
  walk(doc);
  const schemas = (doc.components?.schemas ?? {}) as Record<string, Record<string, unknown>>;
  for (const item of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(item as Record<string, { requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> } }>)) {
      let schema = op?.requestBody?.content?.['application/json']?.schema;
      const ref = typeof schema?.$ref === 'string' ? schema.$ref.replace('#/components/schemas/', '') : undefined;
      if (ref) schema = schemas[ref];
      if (schema && schema.type === 'object' && schema.additionalProperties === undefined) schema.additionalProperties = false;
    }
  }
  return doc;
}

export function generateOpenApi(registry: OpenAPIRegistry) {
  return finishDocument(generateOpenApiRaw(registry));
}

function generateOpenApiRaw(registry: OpenAPIRegistry) {
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Hostflow API',
      version: '0.1.0',
      description:
        'Operations platform for fleets of remote machines. Every response is an envelope `{code, message, data}`; ' +
        'errors use codes 40001 (validation, naming the field), 40101, 40301, 40401, 40501 (method not allowed, with an `Allow` header), 40901, 50001. ' +
        'Authenticate with `Authorization: Bearer <api token>`.',
    },
    servers: [{ url: '/' }],
  });
}

export { OpenAPIRegistry };
