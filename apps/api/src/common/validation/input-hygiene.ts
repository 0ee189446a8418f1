import type { NextFunction, Request, Response } from 'express';
import { DomainError, ErrorCode } from '@berth/contracts';

/**
 * Checks that hold for every input of the api, whatever the endpoint and whatever validates its
 * fields afterwards (class-validator DTOs, zod schemas):
 *
 * - no NUL character in a path, query string, JSON key or JSON string: Postgres `text` cannot
 *   store one (the insert fails with an encoding error) and neither can a process argument or an
 *   environment variable;
 * - no unpaired UTF-16 surrogate (JSON allows the escape `"\ud800"`, but it is not Unicode text:
 *   it cannot be encoded as UTF-8, and validator.js throws on it);
 * - no `__proto__`, `constructor` or `prototype` key anywhere in a JSON body or a query string:
 *   no field of the API has those names, and merging such an object into another is how
 *   prototype pollution starts.
 */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export interface InputProblem {
  /** Dotted path of the offending field (`env.A`, `command.2`), or `path` for the URL path. */
  field: string;
  message: string;
}

const NUL_HINT = 'NUL (\\u0000) is not allowed in any input: remove it';
const SURROGATE_HINT = 'an unpaired UTF-16 surrogate (\\ud800-\\udfff): not valid Unicode text';
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string cannot be stored, or null. */
function stringProblem(v: string): string | null {
  if (v.includes('\0')) return NUL_HINT;
  if (LONE_SURROGATE.test(v)) return SURROGATE_HINT;
  return null;
}

function keyProblem(key: string, field: string): InputProblem | null {
  if (FORBIDDEN_KEYS.has(key)) return { field, message: `${field} is not allowed: '${key}' is never a field of this API` };
  const problem = stringProblem(key);
  if (problem) {
    const shown = JSON.stringify(field).slice(1, -1);
    return { field: shown, message: `a key of ${shown} contains ${problem}` };
  }
  return null;
}

/** The first unsafe key or string in a parsed JSON value (depth-first, bounded by the body limit). */
export function findUnsafeJson(value: unknown, parent = ''): InputProblem | null {
  if (typeof value === 'string') {
    const problem = stringProblem(value);
    return problem ? { field: parent || 'body', message: `${parent || 'body'} contains ${problem}` } : null;
  }
  if (typeof value !== 'object' || value === null) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = findUnsafeJson(value[i], parent ? `${parent}.${i}` : String(i));
      if (p) return p;
    }
    return null;
  }
  // JSON.parse makes `__proto__` an own key, so Object.keys sees it.
  for (const key of Object.keys(value)) {
    const field = parent ? `${parent}.${key}` : key;
    const k = keyProblem(key, field);
    if (k) return k;
    const p = findUnsafeJson((value as Record<string, unknown>)[key], field);
    if (p) return p;
  }
  return null;
}

/** A percent-encoded NUL in a raw URL component (`%00`); a literal NUL never survives HTTP parsing. */
const ENCODED_NUL = /%00/i;

/** The problem with a request's path, query string or JSON body, or null when it is clean. */
export function findUnsafeRequestInput(req: Pick<Request, 'originalUrl' | 'query' | 'body'>): InputProblem | null {
  const url = req.originalUrl;
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  if (ENCODED_NUL.test(rawPath) || rawPath.includes('\0')) {
    return { field: 'path', message: `the URL path contains ${NUL_HINT} (%00)` };
  }
  if (q !== -1) {
    const query = req.query as Record<string, unknown>;
    for (const key of Object.keys(query ?? {})) {
      const k = keyProblem(key, key);
      if (k) return { field: k.field, message: `query parameter ${k.message}` };
      for (const v of ([] as unknown[]).concat(query[key])) {
        const problem = typeof v === 'string' ? stringProblem(v) : null;
        if (problem) return { field: key, message: `query parameter ${key} contains ${problem}` };
      }
    }
  }
  return findUnsafeJson(req.body);
}

/** Express middleware (after the JSON parser): a 400 naming the field for the first unsafe input. */
export function inputHygieneMiddleware() {
  return (req: Request, _res: Response, next: NextFunction) => {
    const p = findUnsafeRequestInput(req);
    if (!p) return next();
    next(new DomainError(ErrorCode.Validation, p.message, { field: p.field, fields: [p] }));
  };
}
