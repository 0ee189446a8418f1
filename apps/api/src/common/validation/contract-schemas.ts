import { ApiResponse } from '@nestjs/swagger';
import type { z } from 'zod';
import {
  CreateServiceInputSchema,
  EventOutSchema,
  ImageSummarySchema,
  openApiSchema,
  ReplicaOutSchema,
  RevisionConfigSchema,
  RevisionSchema,
  ServiceConfigInputSchema,
  ServiceDetailSchema,
  ServiceMetricsSchema,
  ServiceSpecSchema,
  ServiceSummarySchema,
} from '@berth/contracts';

/**
 * The contract schemas (`@berth/contracts`) published as named OpenAPI components: request bodies
 * as their input form, responses as their output form. Handlers refer to them with `contractRef`.
 */
const COMPONENTS: Record<string, [z.ZodType, 'input' | 'output']> = {
  CreateServiceInput: [CreateServiceInputSchema, 'input'],
  ServiceConfigInput: [ServiceConfigInputSchema, 'input'],
  ServiceSpec: [ServiceSpecSchema, 'output'],
  RevisionConfig: [RevisionConfigSchema, 'output'],
  ServiceSummary: [ServiceSummarySchema, 'output'],
  ServiceDetail: [ServiceDetailSchema, 'output'],
  Revision: [RevisionSchema, 'output'],
  Replica: [ReplicaOutSchema, 'output'],
  ServiceMetrics: [ServiceMetricsSchema, 'output'],
  Event: [EventOutSchema, 'output'],
  Image: [ImageSummarySchema, 'output'],
};
export type ContractComponent = keyof typeof COMPONENTS;

export function contractComponents(): Record<string, Record<string, unknown>> {
  return Object.fromEntries(Object.entries(COMPONENTS).map(([name, [schema, io]]) => [name, stripDialect(openApiSchema(schema, io))]));
}

function stripDialect(s: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _drop, ...rest } = s;
  return rest;
}

export const contractRef = (name: ContractComponent) => ({ $ref: `#/components/schemas/${name}` });
const page = (name: ContractComponent) => ({
  type: 'object',
  properties: { items: { type: 'array', items: contractRef(name) }, nextCursor: { type: 'string', nullable: true } },
  required: ['items', 'nextCursor'],
});

/** 200/201 response bodies from the contract. */
export const ApiContractResponse = (name: ContractComponent, opts: { list?: boolean; status?: number; description?: string } = {}) =>
  ApiResponse({ status: opts.status ?? 200, description: opts.description, schema: (opts.list ? page(name) : contractRef(name)) as never });
