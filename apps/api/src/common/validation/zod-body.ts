import { applyDecorators, Body, type PipeTransform } from '@nestjs/common';
import { ApiBody } from '@nestjs/swagger';
import type { z } from 'zod';
import { DomainError, ErrorCode, openApiSchema, zodIssues } from '@berth/contracts';

/** Validates a request body against a contract schema; 400 names every field that is off. */
export class ZodBodyPipe<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  constructor(private readonly schema: S) {}

  transform(value: unknown): z.output<S> {
    if (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DomainError(ErrorCode.Validation, 'the request body must be a JSON object', { fields: [] });
    }
    const r = this.schema.safeParse(value);
    if (r.success) return r.data;
    const problems = zodIssues(r.error).map((p) => ({ field: p.path, message: p.message }));
    throw new DomainError(ErrorCode.Validation, problems.map((p) => p.message).join('; ') || 'invalid input', { fields: problems });
  }
}

/** `@ContractBody(Schema) body: z.output<typeof Schema>`: validation + the OpenAPI request body, from one schema. */
export const ContractBody = (schema: z.ZodType) => Body(new ZodBodyPipe(schema));

/** The OpenAPI request-body description of a contract schema (use beside ContractBody on the handler). */
export const ApiContractBody = (schema: z.ZodType, description?: string) =>
  applyDecorators(ApiBody({ schema: openApiSchema(schema, 'input') as never, description }));
